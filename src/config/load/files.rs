//! Files the stack file names (`schema = "schemas/x.json"`, `build = "workers/x"`): paths are
//! relative to the stack file's directory and stay inside it, only regular files are read, and
//! at most [`MAX_FILE_BYTES`] of them, so `/dev/zero`, `/etc/shadow` or `../../secret` cannot
//! hang the loader, exhaust memory or be read through a stack file.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest stack file, or file the stack file names, that is read (1 MiB): larger ones
/// (and endless devices) are refused rather than read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads at most [`MAX_FILE_BYTES`] of `path`; a longer file (or an endless device) is an
/// error of kind [`std::io::ErrorKind::FileTooLarge`].
pub(crate) fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            "larger than the 1 MiB limit",
        ));
    }
    Ok(bytes)
}

/// Why a path named in the stack file was refused: the message, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refused {
    pub message: String,
    pub help: String,
}

fn refused(message: String, help: &str) -> Refused {
    Refused {
        message,
        help: help.to_string(),
    }
}

/// The directory the stack file's relative paths start from.
pub(crate) fn base_dir(stack_file: &Path) -> &Path {
    match stack_file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `value` as a path inside `base`: relative, without `..`, and (following symlinks) still
/// inside `base` when it exists. `what` names the key in messages (`schema`).
fn inside(base: &Path, value: &str, what: &str) -> Result<PathBuf, Refused> {
    let help = "write a path relative to the stack file, inside its directory (no absolute paths, no `..`)";
    let relative = Path::new(value);
    if value.trim().is_empty() {
        return Err(refused(format!("`{what}` is empty"), help));
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(refused(
            format!("`{what}` must be a path inside the stack file's directory, found {value:?}"),
            help,
        ));
    }
    let path = base.join(relative);
    // A symlink may still lead outside; compare real paths when both exist.
    if let (Ok(real_base), Ok(real)) = (std::fs::canonicalize(base), std::fs::canonicalize(&path))
        && !real.starts_with(&real_base)
    {
        return Err(refused(
            format!(
                "`{what}` = {value:?} leads outside the stack file's directory (to {})",
                real.display()
            ),
            help,
        ));
    }
    Ok(path)
}

/// Reads the UTF-8 text of the regular file `value` names, inside `base`, at most
/// [`MAX_FILE_BYTES`]. `fix` says what the file should be.
pub(super) fn read_named_file(
    base: &Path,
    value: &str,
    what: &str,
    fix: &str,
) -> Result<(PathBuf, String), Refused> {
    let path = inside(base, value, what)?;
    let metadata = std::fs::metadata(&path).map_err(|error| {
        refused(
            format!("cannot read the {what} file {}: {error}", path.display()),
            &format!("the path is relative to the stack file; {fix}"),
        )
    })?;
    if !metadata.is_file() {
        return Err(refused(
            format!("the {what} file {} is not a regular file", path.display()),
            &format!("name a regular file inside the stack file's directory; {fix}"),
        ));
    }
    let too_large = || {
        refused(
            format!(
                "the {what} file {} is larger than the 1 MiB limit",
                path.display()
            ),
            &format!("files named in the stack file are at most 1 MiB; {fix}"),
        )
    };
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let bytes = read_capped(&path).map_err(|error| match error.kind() {
        std::io::ErrorKind::FileTooLarge => too_large(),
        _ => refused(
            format!("cannot read the {what} file {}: {error}", path.display()),
            &format!("check the file's permissions; {fix}"),
        ),
    })?;
    let text = String::from_utf8(bytes).map_err(|error| {
        refused(
            format!(
                "the {what} file {} is not valid UTF-8 (invalid byte at offset {})",
                path.display(),
                error.utf8_error().valid_up_to()
            ),
            &format!("re-save it as UTF-8; {fix}"),
        )
    })?;
    Ok((path, text))
}

/// The directory `value` names, relative to `base`, which must exist. `..` is allowed (a
/// monorepo may keep its packages beside the deploy directory); absolute paths are not.
pub(super) fn existing_dir(base: &Path, value: &str, what: &str) -> Result<PathBuf, Refused> {
    let path = base.join(value);
    match std::fs::metadata(&path) {
        Ok(metadata) if metadata.is_dir() => Ok(path),
        Ok(_) => Err(refused(
            format!(
                "`{what}` directory {value:?} is not a directory ({})",
                path.display()
            ),
            "name the cargo package's directory (the one with its Cargo.toml), relative to the stack file",
        )),
        Err(error) => Err(refused(
            format!(
                "`{what}` directory {value:?} cannot be used ({}: {error})",
                path.display()
            ),
            "name the cargo package's directory (the one with its Cargo.toml), relative to the stack file",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_stack_directory_are_refused() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        for value in ["/dev/zero", "/etc/passwd", "../Cargo.toml", "a/../../b", ""] {
            let error = read_named_file(base, value, "schema", "x").unwrap_err();
            assert!(
                error.message.contains("inside the stack file's directory")
                    || error.message.contains("is empty"),
                "{value}: {error:?}"
            );
        }
    }

    #[test]
    fn devices_and_directories_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.json")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let base = dir.path();
        let started = std::time::Instant::now();
        let zero = read_named_file(base, "zero.json", "schema", "x").unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(
            zero.message.contains("leads outside") || zero.message.contains("not a regular file"),
            "{zero:?}"
        );
        let sub = read_named_file(base, "sub", "schema", "x").unwrap_err();
        assert!(sub.message.contains("is not a regular file"), "{sub:?}");
    }

    #[test]
    fn files_over_the_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b' '; MAX_FILE_BYTES as usize + 1];
        std::fs::write(dir.path().join("big.json"), big).unwrap();
        let error = read_named_file(dir.path(), "big.json", "schema", "x").unwrap_err();
        assert!(
            error.message.contains("larger than the 1 MiB limit"),
            "{error:?}"
        );
        let error = read_capped(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::FileTooLarge);
    }
}
