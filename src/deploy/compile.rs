//! Compiles a worker's cargo package into a static x86-64 Linux binary (the musl target), with
//! flags that make the bytes independent of where the checkout lives.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Cloud Run runs Linux x86-64; musl links statically, so the image needs no libc.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// Why a package could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(
        "the Rust target {TARGET} is not installed (no {0}); stackctl builds static Linux binaries with it\n  hint: run `rustup target add {TARGET}`"
    )]
    MissingTarget(PathBuf),
    #[error(
        "no cargo package at {dir}: {reason}\n  hint: `build = \"...\"` names a directory with a Cargo.toml, relative to the stack file"
    )]
    NoPackage { dir: PathBuf, reason: String },
    #[error(
        "could not run `{program}`: {source}\n  hint: install Rust with rustup (cargo and rustc must be on PATH)"
    )]
    Spawn {
        program: &'static str,
        source: std::io::Error,
    },
    #[error("cargo build of {package} failed:\n{stderr}")]
    Cargo { package: String, stderr: String },
    #[error("cargo built no executable for package {0}; is it a binary crate (src/main.rs)?")]
    NoExecutable(String),
    #[error("could not read the binary {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a static x86-64 Linux executable: {reason}")]
    NotStatic { path: PathBuf, reason: String },
}

/// A compiled worker.
#[derive(Debug, Clone)]
pub struct CompiledBinary {
    /// The package (and executable) name.
    pub name: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub elapsed: Duration,
}

/// Fails with the rustup hint when the musl target's standard library is missing.
pub async fn check_target_installed() -> Result<(), CompileError> {
    let output = tokio::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .await
        .map_err(|source| CompileError::Spawn {
            program: "rustc",
            source,
        })?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let lib = sysroot.join("lib").join("rustlib").join(TARGET).join("lib");
    if lib.is_dir() {
        Ok(())
    } else {
        Err(CompileError::MissingTarget(lib))
    }
}

/// The package's name and its workspace root (which path remapping is relative to).
async fn locate(package_dir: &Path) -> Result<(String, PathBuf), CompileError> {
    let manifest = package_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| CompileError::NoPackage {
        dir: package_dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let parsed: toml::Table = toml::from_str(&text).map_err(|e| CompileError::NoPackage {
        dir: package_dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let name = parsed
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .ok_or_else(|| CompileError::NoPackage {
            dir: package_dir.to_path_buf(),
            reason: "Cargo.toml has no [package] name".into(),
        })?
        .to_string();
    let output = tokio::process::Command::new("cargo")
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .await
        .map_err(|source| CompileError::Spawn {
            program: "cargo",
            source,
        })?;
    let workspace_manifest = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let root = workspace_manifest
        .parent()
        .filter(|_| output.status.success())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| package_dir.to_path_buf());
    Ok((name, root))
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
}

/// rustc flags (as `CARGO_ENCODED_RUSTFLAGS`, 0x1f-separated): absolute paths of the workspace
/// and the cargo registry are rewritten to fixed ones, and symbols are stripped.
pub fn reproducible_rustflags(workspace_root: &Path, cargo_home: Option<&Path>) -> String {
    let mut flags = vec![format!(
        "--remap-path-prefix={}=/build",
        workspace_root.display()
    )];
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    flags.push("-Cstrip=symbols".into());
    flags.join("\u{1f}")
}

/// What a binary is built to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Cloud Run: a static x86-64 Linux binary (the musl target).
    CloudRun,
    /// This machine, for `stackctl up --local`: the host target, no musl needed.
    Host,
}

impl Platform {
    pub fn describe(self) -> &'static str {
        match self {
            Self::CloudRun => "x86_64-unknown-linux-musl, release",
            Self::Host => "this machine's target, release",
        }
    }
}

/// `cargo build --release --target x86_64-unknown-linux-musl` (or for the host) for the package
/// in `package_dir`.
pub async fn compile(
    package_dir: &Path,
    platform: Platform,
) -> Result<CompiledBinary, CompileError> {
    if platform == Platform::CloudRun {
        check_target_installed().await?;
    }
    let started = Instant::now();
    let (name, workspace_root) = locate(package_dir).await?;
    let target_args: &[&str] = match platform {
        Platform::CloudRun => &["--target", TARGET],
        Platform::Host => &[],
    };
    let output = tokio::process::Command::new("cargo")
        .args(["build", "--release"])
        .args(target_args)
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(package_dir.join("Cargo.toml"))
        .args(["--package", &name])
        .env_remove("RUSTFLAGS")
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            reproducible_rustflags(&workspace_root, cargo_home().as_deref()),
        )
        .output()
        .await
        .map_err(|source| CompileError::Spawn {
            program: "cargo",
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        return Err(CompileError::Cargo {
            package: name,
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let path = executable_from_messages(&String::from_utf8_lossy(&output.stdout), &name)
        .ok_or_else(|| CompileError::NoExecutable(name.clone()))?;
    let bytes = std::fs::read(&path).map_err(|source| CompileError::Read {
        path: path.clone(),
        source,
    })?;
    if platform == Platform::CloudRun {
        check_static_x86_64(&bytes).map_err(|reason| CompileError::NotStatic {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(CompiledBinary {
        name,
        path,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// The executable cargo reported for `package` in its JSON messages.
fn executable_from_messages(stdout: &str, package: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["target"]["name"] == package)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// An ELF64 x86-64 executable without a program interpreter (statically linked).
pub fn check_static_x86_64(bytes: &[u8]) -> Result<(), String> {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF".into());
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    if u16_at(18) != 0x3e {
        return Err(format!("machine {:#x} is not x86-64", u16_at(18)));
    }
    let mut offset_bytes = [0u8; 8];
    offset_bytes.copy_from_slice(&bytes[32..40]);
    let phoff = usize::try_from(u64::from_le_bytes(offset_bytes)).unwrap_or(usize::MAX);
    let (entry_size, count) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
    for index in 0..count {
        let at = phoff.saturating_add(index.saturating_mul(entry_size));
        let Some(kind) = bytes.get(at..at + 4) else {
            return Err("truncated program headers".into());
        };
        if u32::from_le_bytes([kind[0], kind[1], kind[2], kind[3]]) == PT_INTERP {
            return Err(
                "it is dynamically linked (has an ELF interpreter); build for the musl target"
                    .into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_remap_the_checkout_and_registry_and_strip_symbols() {
        let flags =
            reproducible_rustflags(Path::new("/home/me/shop"), Some(Path::new("/root/.cargo")));
        assert_eq!(
            flags.split('\u{1f}').collect::<Vec<_>>(),
            vec![
                "--remap-path-prefix=/home/me/shop=/build",
                "--remap-path-prefix=/root/.cargo=/cargo",
                "-Cstrip=symbols"
            ]
        );
    }

    #[test]
    fn the_executable_is_read_from_cargo_json_messages() {
        let stdout = r#"{"reason":"compiler-artifact","target":{"name":"dep"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"task-worker"},"executable":"/t/release/task-worker"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            executable_from_messages(stdout, "task-worker"),
            Some(PathBuf::from("/t/release/task-worker"))
        );
        assert_eq!(executable_from_messages(stdout, "other"), None);
    }

    #[test]
    fn only_static_x86_64_elf_passes() {
        assert!(check_static_x86_64(b"#!/bin/sh\n").is_err());
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 0x3e;
        assert_eq!(check_static_x86_64(&elf), Ok(()));
        // One PT_INTERP program header: dynamically linked.
        elf[32] = 64;
        elf[54] = 56;
        elf[56] = 1;
        elf.extend(std::iter::repeat_n(0, 56));
        elf[64] = 3;
        assert!(
            check_static_x86_64(&elf)
                .unwrap_err()
                .contains("dynamically linked")
        );
        elf[18] = 0xb7;
        assert!(
            check_static_x86_64(&elf)
                .unwrap_err()
                .contains("not x86-64")
        );
    }
}
