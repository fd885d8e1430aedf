//! Reproducible OCI images from a static binary, without Docker: a base layer (CA certificates, a
//! non-root user, /tmp), a binary layer, the config and a single-platform linux/amd64 manifest.
//!
//! Pure: the same inputs always give the same bytes. Tar entries are sorted with mtimes, uids and
//! gids zeroed and no user or group names; gzip has a fixed header (no mtime, no file name) and a
//! pinned backend and level; JSON is canonical (sorted keys, no whitespace).

use std::str::FromStr;

use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, Digest, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The non-root user every image runs as (distroless' `nonroot`).
pub const NONROOT_UID: u32 = 65532;
/// Where the binary lives inside the image.
pub const APP_DIR: &str = "app";
/// Where the CA bundle lives inside the image (Debian's path, which rustls-native-certs and OpenSSL read).
pub const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// gzip level of every layer; part of the digest, so it never changes silently.
const GZIP_LEVEL: u32 = 6;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Why an image could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("could not write the {layer} layer: {source}")]
    Layer {
        layer: &'static str,
        source: std::io::Error,
    },
    #[error("could not assemble the image {what}: {message}")]
    Spec { what: &'static str, message: String },
}

/// Everything an image is made from.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// The executable's file name inside `/app/`.
    pub binary_name: String,
    pub binary: Vec<u8>,
    /// The PEM bundle copied to `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_bundle: Vec<u8>,
    /// `KEY=value` entries of the config's `Env` (sorted by the builder).
    pub env: Vec<String>,
    /// RFC 3339 `created` of the config: `1970-01-01T00:00:00Z`, or `SOURCE_DATE_EPOCH`.
    pub created: String,
}

/// One content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`
    pub digest: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Self {
        Self {
            digest: sha256_digest(&bytes),
            media_type,
            bytes,
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// A built image: its layers, config and manifest, ready to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciImage {
    /// Base layer first, then the binary layer.
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Blob,
}

impl OciImage {
    /// The manifest digest, which Cloud Run and the registry report for this image.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Compressed size of every blob (what a first push uploads).
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(Blob::size).sum::<u64>() + self.config.size() + self.manifest.size()
    }

    /// The blobs a registry needs before the manifest: layers, then the config.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A file or directory of a layer, before sorting.
struct Entry {
    path: String,
    mode: u32,
    contents: Option<Vec<u8>>,
}

impl Entry {
    fn dir(path: &str, mode: u32) -> Self {
        Self {
            path: format!("{path}/"),
            mode,
            contents: None,
        }
    }

    fn file(path: &str, mode: u32, contents: Vec<u8>) -> Self {
        Self {
            path: path.to_string(),
            mode,
            contents: Some(contents),
        }
    }
}

/// An uncompressed tar of `entries`, sorted by path, with every timestamp and id zeroed.
fn deterministic_tar(mut entries: Vec<Entry>, layer: &'static str) -> Result<Vec<u8>, ImageError> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut builder = tar::Builder::new(Vec::new());
    let io = |source| ImageError::Layer { layer, source };
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("").map_err(io)?;
        header.set_groupname("").map_err(io)?;
        header.set_mode(entry.mode);
        match &entry.contents {
            Some(contents) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(contents.len() as u64);
                builder
                    .append_data(&mut header, &entry.path, contents.as_slice())
                    .map_err(io)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder
                    .append_data(&mut header, &entry.path, std::io::empty())
                    .map_err(io)?;
            }
        }
    }
    builder.into_inner().map_err(io)
}

/// gzip with a fixed header: no mtime, no file name, the pinned level.
fn deterministic_gzip(tar: &[u8], layer: &'static str) -> Result<Vec<u8>, ImageError> {
    use std::io::Write;
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    encoder
        .write_all(tar)
        .and_then(|()| encoder.finish())
        .map_err(|source| ImageError::Layer { layer, source })
}

/// A layer: its gzip blob and its `diff_id` (the digest of the uncompressed tar).
struct Layer {
    blob: Blob,
    diff_id: String,
}

fn layer(entries: Vec<Entry>, name: &'static str) -> Result<Layer, ImageError> {
    let tar = deterministic_tar(entries, name)?;
    let diff_id = sha256_digest(&tar);
    let gz = deterministic_gzip(&tar, name)?;
    Ok(Layer {
        blob: Blob::new(LAYER_MEDIA_TYPE, gz),
        diff_id,
    })
}

fn base_layer(ca_bundle: &[u8]) -> Result<Layer, ImageError> {
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{NONROOT_UID}:\n");
    layer(
        vec![
            Entry::dir("etc", 0o755),
            Entry::file("etc/passwd", 0o644, passwd.into_bytes()),
            Entry::file("etc/group", 0o644, group.into_bytes()),
            Entry::dir("etc/ssl", 0o755),
            Entry::dir("etc/ssl/certs", 0o755),
            Entry::file(CA_BUNDLE_PATH, 0o644, ca_bundle.to_vec()),
            Entry::dir("tmp", 0o1777),
        ],
        "base",
    )
}

fn binary_layer(name: &str, binary: &[u8]) -> Result<Layer, ImageError> {
    layer(
        vec![
            Entry::dir(APP_DIR, 0o755),
            Entry::file(&format!("{APP_DIR}/{name}"), 0o755, binary.to_vec()),
        ],
        "binary",
    )
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(fields) => {
                let mut keys: Vec<&String> = fields.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&fields[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(value)).unwrap_or_default()
}

fn spec_error(what: &'static str) -> impl Fn(oci_spec::OciSpecError) -> ImageError {
    move |e| ImageError::Spec {
        what,
        message: e.to_string(),
    }
}

fn to_canonical<T: serde::Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, ImageError> {
    let value = serde_json::to_value(value).map_err(|e| ImageError::Spec {
        what,
        message: e.to_string(),
    })?;
    Ok(canonical_json(&value))
}

fn descriptor(blob: &Blob, media_type: MediaType) -> Result<Descriptor, ImageError> {
    let digest = Digest::from_str(&blob.digest).map_err(spec_error("descriptor"))?;
    Ok(Descriptor::new(media_type, blob.size(), digest))
}

/// Assembles the image. Deterministic: equal inputs give byte-identical blobs and digests.
pub fn build_image(inputs: &ImageInputs) -> Result<OciImage, ImageError> {
    let base = base_layer(&inputs.ca_bundle)?;
    let app = binary_layer(&inputs.binary_name, &inputs.binary)?;

    let mut env = vec![
        format!("PATH=/{APP_DIR}:/usr/local/bin:/usr/bin:/bin"),
        format!("SSL_CERT_FILE=/{CA_BUNDLE_PATH}"),
    ];
    env.extend(inputs.env.iter().cloned());
    env.sort();
    env.dedup();
    let config = ConfigBuilder::default()
        .user(format!("{NONROOT_UID}:{NONROOT_UID}"))
        .env(env)
        .entrypoint(vec![format!("/{APP_DIR}/{}", inputs.binary_name)])
        .working_dir(format!("/{APP_DIR}"))
        .build()
        .map_err(spec_error("config"))?;
    let history = vec![
        HistoryBuilder::default()
            .created(inputs.created.clone())
            .created_by("stackctl build: base layer (CA certificates, nonroot user 65532, /tmp)")
            .build()
            .map_err(spec_error("history"))?,
        HistoryBuilder::default()
            .created(inputs.created.clone())
            .created_by(format!("stackctl build: /{APP_DIR}/{}", inputs.binary_name))
            .build()
            .map_err(spec_error("history"))?,
    ];
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![base.diff_id.clone(), app.diff_id.clone()])
        .build()
        .map_err(spec_error("rootfs"))?;
    let image_config = ImageConfigurationBuilder::default()
        .created(inputs.created.clone())
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(rootfs)
        .history(history)
        .build()
        .map_err(spec_error("config"))?;
    let config_blob = Blob::new(CONFIG_MEDIA_TYPE, to_canonical("config", &image_config)?);

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(&config_blob, MediaType::ImageConfig)?)
        .layers(vec![
            descriptor(&base.blob, MediaType::ImageLayerGzip)?,
            descriptor(&app.blob, MediaType::ImageLayerGzip)?,
        ])
        .build()
        .map_err(spec_error("manifest"))?;
    let manifest_blob = Blob::new(MANIFEST_MEDIA_TYPE, to_canonical("manifest", &manifest)?);
    Ok(OciImage {
        layers: vec![base.blob, app.blob],
        config: config_blob,
        manifest: manifest_blob,
    })
}

/// The config's `created` time: `SOURCE_DATE_EPOCH` (seconds) when set, else the Unix epoch.
pub fn created_time(source_date_epoch: Option<&str>) -> String {
    let seconds = source_date_epoch
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn inputs() -> ImageInputs {
        ImageInputs {
            binary_name: "worker".into(),
            binary: b"\x7fELF fake binary".to_vec(),
            ca_bundle: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            env: vec!["RUST_LOG=info".into()],
            created: created_time(None),
        }
    }

    fn untar(gz: &[u8]) -> Vec<(String, u32, u64, u64, u64)> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_same_inputs_give_the_same_digest_and_any_change_a_new_one() {
        let a = build_image(&inputs()).unwrap();
        let b = build_image(&inputs()).unwrap();
        assert_eq!(a, b);
        let mut changed = inputs();
        changed.binary.push(0);
        let c = build_image(&changed).unwrap();
        assert_ne!(a.digest(), c.digest());
        assert_eq!(a.layers[0], c.layers[0], "the base layer is shared");
        assert_ne!(a.layers[1], c.layers[1]);
    }

    #[test]
    fn golden_digests_pin_the_tar_gzip_and_json_encodings() {
        // If this changes, every image digest users have deployed changes: only on purpose.
        let image = build_image(&inputs()).unwrap();
        insta::assert_snapshot!(
            format!(
                "base   {}\nbinary {}\nconfig {}\nimage  {}",
                image.layers[0].digest,
                image.layers[1].digest,
                image.config.digest,
                image.digest()
            ),
            @r"
        base   sha256:7a8018da1390fb4a60cb9419a251894d017c913f9a3e48fadabddd4420533a3c
        binary sha256:62a22fee86b347d76294c40fb80bb9d618a4263a17bb6e2c97f80b77906d7b9d
        config sha256:65709e5ddc1b83f5628d503b3a08bd04ed4650c5a1f70ba2d81953c81558067f
        image  sha256:28fb5b7d55f6fb4c2e32aaa4ba0e014995d62cae5c614de2c4bf5b7b1256f342
        "
        );
    }

    #[test]
    fn layers_are_sorted_with_zeroed_times_and_ids_and_a_fixed_gzip_header() {
        let image = build_image(&inputs()).unwrap();
        let base = untar(&image.layers[0].bytes);
        let paths: Vec<_> = base.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "etc/",
                "etc/group",
                "etc/passwd",
                "etc/ssl/",
                "etc/ssl/certs/",
                "etc/ssl/certs/ca-certificates.crt",
                "tmp/"
            ]
        );
        assert!(base.iter().all(|e| e.2 == 0 && e.3 == 0 && e.4 == 0));
        assert_eq!(
            base.last().unwrap().1,
            0o1777,
            "/tmp is world-writable and sticky"
        );
        let app = untar(&image.layers[1].bytes);
        assert_eq!(app[1].0, "app/worker");
        assert_eq!(app[1].1, 0o755);
        let gz = &image.layers[1].bytes;
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0], "no FNAME flag");
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "mtime 0");
    }

    #[test]
    fn config_and_manifest_are_canonical_single_platform_json() {
        let image = build_image(&inputs()).unwrap();
        let config: Value = serde_json::from_slice(&image.config.bytes).unwrap();
        assert_eq!(canonical_json(&config), image.config.bytes);
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"][0], "/app/worker");
        assert!(
            config["config"]["Env"]
                .as_array()
                .unwrap()
                .contains(&"RUST_LOG=info".into())
        );
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        let manifest: Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        assert_eq!(canonical_json(&manifest), image.manifest.bytes);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
        assert_eq!(manifest["layers"][1]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(
            image.digest(),
            sha256_digest(&image.manifest.bytes),
            "the digest is of the exact bytes pushed"
        );
    }

    #[test]
    fn source_date_epoch_sets_created() {
        assert_eq!(created_time(Some("86400")), "1970-01-02T00:00:00Z");
        assert_eq!(created_time(Some("junk")), "1970-01-01T00:00:00Z");
    }
}
