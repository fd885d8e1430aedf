//! Which images the emulator can run, and their files: an image pushed to the emulator's own
//! registry (as `stackctl deploy --local` and `up` push them) is unpacked once per manifest
//! digest under the state directory, and its entrypoint runs as a host process. Any other image
//! (Google's samples, another registry) cannot run here; the reason says so.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::emulator::Emulator;
use crate::lock;

/// An image unpacked on disk, ready to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpacked {
    /// The host path of the entrypoint's program.
    pub program: PathBuf,
    /// The rest of the entrypoint, then `Cmd`.
    pub args: Vec<String>,
    /// The image config's `Env` (`KEY=value`).
    pub env: Vec<(String, String)>,
    /// The host path of the config's `WorkingDir` (the root when unset).
    pub working_dir: PathBuf,
}

fn not_runnable(image: &str, why: &str) -> String {
    format!(
        "the emulator cannot run image {image}: {why}; only images pushed to its registry run locally (`stackctl deploy --local`, or `build` in stack.toml with `stackctl up --local`)"
    )
}

/// Where unpacked images live: `<state>/runtime/images`, or a temp directory without state.
/// Absolute, since processes start in their image's working directory.
fn images_dir(emulator: &Emulator) -> PathBuf {
    let dir = match &emulator.settings.state_dir {
        Some(dir) => dir.join("runtime").join("images"),
        None => std::env::temp_dir().join(format!("stackctl-emulator-{}", std::process::id())),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The manifest an image reference names in the emulator's registry: `HOST/PATH@sha256:…`
/// (by digest, any repository holding it) or `HOST/PATH:TAG`.
fn find_manifest(emulator: &Emulator, image: &str) -> Result<(String, Value), String> {
    let state = lock(&emulator.state);
    let (path, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest.to_string())),
        None => (image, None),
    };
    let repository_path = path.split_once('/').map_or(path, |(_, rest)| rest);
    let by_tag = || {
        let (repo, tag) = repository_path
            .rsplit_once(':')
            .unwrap_or((repository_path, "latest"));
        state
            .registry
            .get(repo)
            .and_then(|r| r.tags.get(tag).cloned())
    };
    let digest = digest
        .or_else(by_tag)
        .ok_or_else(|| not_runnable(image, "it is not in the emulator's registry"))?;
    let preferred = state
        .registry
        .get(repository_path)
        .and_then(|r| r.manifests.get(&digest));
    let manifest = preferred
        .or_else(|| {
            state
                .registry
                .values()
                .find_map(|r| r.manifests.get(&digest))
        })
        .ok_or_else(|| not_runnable(image, "it is not in the emulator's registry"))?;
    let parsed: Value = serde_json::from_str(&manifest.body)
        .map_err(|_| not_runnable(image, "its manifest is not JSON"))?;
    Ok((digest, parsed))
}

/// Unpacks `image` (once per digest) and reads its entrypoint, or says why it cannot run here.
pub fn unpack(emulator: &Emulator, image: &str) -> Result<Unpacked, String> {
    let (digest, manifest) = find_manifest(emulator, image)?;
    if manifest.get("manifests").is_some() {
        return Err(not_runnable(image, "it is an image index, not one image"));
    }
    let blob = |digest: &str| {
        emulator
            .registry
            .get(digest)
            .ok_or_else(|| not_runnable(image, &format!("its blob {digest} is missing")))
    };
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config: Value = serde_json::from_slice(&blob(config_digest)?)
        .map_err(|_| not_runnable(image, "its config is not JSON"))?;
    let hex = digest.trim_start_matches("sha256:");
    let root = images_dir(emulator).join(&hex[..hex.len().min(16)]);
    let rootfs = root.join("rootfs");
    let complete = root.join(".complete");
    if !complete.exists() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&rootfs).map_err(|e| {
            not_runnable(image, &format!("cannot create {}: {e}", rootfs.display()))
        })?;
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let layer_digest = layer["digest"].as_str().unwrap_or_default();
            let bytes = blob(layer_digest)?;
            let media_type = layer["mediaType"].as_str().unwrap_or_default();
            unpack_layer(&bytes, media_type.contains("gzip"), &rootfs).map_err(|e| {
                not_runnable(
                    image,
                    &format!("its layer {layer_digest} does not unpack: {e}"),
                )
            })?;
        }
        std::fs::write(&complete, b"")
            .map_err(|e| not_runnable(image, &format!("cannot mark it unpacked: {e}")))?;
    }
    let settings = &config["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut command = strings(&settings["Entrypoint"]);
    command.extend(strings(&settings["Cmd"]));
    let Some(first) = command.first().cloned() else {
        return Err(not_runnable(image, "it has no entrypoint or command"));
    };
    let program = inside(&rootfs, &first);
    if !program.is_file() {
        return Err(not_runnable(
            image,
            &format!("its entrypoint {first} is not a file in the image"),
        ));
    }
    let env = strings(&settings["Env"])
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let working_dir = settings["WorkingDir"]
        .as_str()
        .filter(|w| !w.is_empty())
        .map_or_else(|| rootfs.clone(), |w| inside(&rootfs, w));
    Ok(Unpacked {
        program,
        args: command[1..].to_vec(),
        env,
        working_dir,
    })
}

/// An absolute path of the image, as a host path under `rootfs`.
fn inside(rootfs: &Path, image_path: &str) -> PathBuf {
    let mut out = rootfs.to_path_buf();
    for part in image_path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        out.push(part);
    }
    out
}

/// Unpacks one layer tar (gzipped or not) under `rootfs`; entries cannot escape it.
fn unpack_layer(bytes: &[u8], gzip: bool, rootfs: &Path) -> std::io::Result<()> {
    let reader: Box<dyn std::io::Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        entry.unpack_in(rootfs)?;
    }
    Ok(())
}
