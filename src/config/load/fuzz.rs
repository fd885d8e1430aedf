//! A bounded, seeded mutation test of stack.toml loading: a few thousand mutants of the
//! repository's example (byte flips, deleted, duplicated and truncated lines, hostile values
//! in known keys) must load without a panic, quickly, and every error must be located
//! (`file:line:column`). Re-run one seed with `STACKCTL_FUZZ_SEED=N cargo test --lib fuzz`.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::parse_bytes;

const EXAMPLE: &str = include_str!("../../../stack.toml");
const SCHEMA: &str = include_str!("../../../schemas/orders.json");

/// A directory the example stack.toml loads in: its schema file and one (empty) directory
/// for each `build = "..."` the example names, read from the example itself.
pub(super) fn example_project_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("schemas/orders.json"), SCHEMA).unwrap();
    let builds = EXAMPLE.lines().filter_map(|line| {
        let value = line
            .trim()
            .strip_prefix("build")?
            .trim_start()
            .strip_prefix('=')?;
        value.trim_start().strip_prefix('"')?.split('"').next()
    });
    for build in builds {
        std::fs::create_dir_all(dir.path().join(build)).unwrap();
    }
    dir
}

/// Mutants per run: about 3 s in a debug build.
const CASES: usize = 3000;

/// One load may not take longer than this.
const CASE_BOUND: Duration = Duration::from_secs(10);

/// Values put in place of a `key = value` line's value.
const HOSTILE_VALUES: &[&str] = &[
    "\"\"",
    "0",
    "-1",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "-9223372036854775808",
    "0.0000001",
    "true",
    "[]",
    "{}",
    "[1, \"x\", true]",
    "{ a = 1 }",
    "\"/dev/zero\"",
    "\"/dev/urandom\"",
    "\"../stack.toml\"",
    "\"/etc/passwd\"",
    "\"schemas\"",
    "\"Mars/Olympus\"",
    "\"evil.com#\"",
    "\"1.2.3.4\"",
    "\"a..b\"",
    "\"99999999999999999999d\"",
    "\"0s\"",
    "\"-5m\"",
    "\"999999999999Gi\"",
    "\"0.0001\"",
    "\"service.worker\"",
    "\"service.\"",
    "\"queue.nope\"",
    "[\"service_account.worker\", \"service_account.worker\"]",
    "\"* * * * * *\"",
    "\"60 25 32 13 8\"",
    "\"\\u0000\"",
    "\"é∂ƒ😀\"",
    "'''\nmulti\nline'''",
    "\"\u{202e}rtl\"",
];

fn mutate(rng: &mut StdRng, text: &mut Vec<u8>) {
    let lines =
        |text: &[u8]| -> Vec<Vec<u8>> { text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect() };
    match rng.random_range(0..7) {
        // Flip one byte (any value: also invalid UTF-8 and control characters).
        0 if !text.is_empty() => {
            let at = rng.random_range(0..text.len());
            text[at] = rng.random();
        }
        // Delete a line.
        1 => {
            let mut all = lines(text);
            let at = rng.random_range(0..all.len());
            all.remove(at);
            *text = all.join(&b'\n');
        }
        // Duplicate a line somewhere else.
        2 => {
            let mut all = lines(text);
            let line = all[rng.random_range(0..all.len())].clone();
            let at = rng.random_range(0..=all.len());
            all.insert(at, line);
            *text = all.join(&b'\n');
        }
        // A hostile value in a known key.
        3 | 4 => {
            let mut all = lines(text);
            let keyed: Vec<usize> = (0..all.len())
                .filter(|&i| all[i].contains(&b'=') && !all[i].starts_with(b"#"))
                .collect();
            if let Some(&i) = keyed.get(rng.random_range(0..keyed.len().max(1))) {
                let key_end = all[i].iter().position(|b| *b == b'=').unwrap_or(0);
                let mut line = all[i][..=key_end].to_vec();
                line.push(b' ');
                let value = if rng.random_bool(0.1) {
                    // A long value.
                    format!("\"{}\"", "x".repeat(rng.random_range(64..20_000)))
                } else {
                    HOSTILE_VALUES[rng.random_range(0..HOSTILE_VALUES.len())].to_string()
                };
                line.extend_from_slice(value.as_bytes());
                all[i] = line;
            }
            *text = all.join(&b'\n');
        }
        // Truncate.
        5 if !text.is_empty() => {
            let at = rng.random_range(0..text.len());
            text.truncate(at);
        }
        // Insert a few random bytes.
        _ => {
            let at = rng.random_range(0..=text.len());
            let bytes: Vec<u8> = (0..rng.random_range(1..8)).map(|_| rng.random()).collect();
            text.splice(at..at, bytes);
        }
    }
}

/// Loads one mutant: whether it was rejected, or a description of what went wrong.
fn check(file: &Path, text: Vec<u8>) -> Result<bool, String> {
    let started = Instant::now();
    let result = std::panic::catch_unwind(|| parse_bytes(file, text));
    let elapsed = started.elapsed();
    if elapsed > CASE_BOUND {
        return Err(format!("took {elapsed:?}"));
    }
    let Ok(result) = result else {
        return Err("panicked".into());
    };
    let Err(errors) = result else {
        return Ok(false);
    };
    if errors.is_empty() {
        return Err("an Err with no errors".into());
    }
    let rendered = errors.to_string();
    for error in &errors {
        let (Some(line), Some(column)) = (error.line, error.column) else {
            return Err(format!("an error without a position:\n{error}"));
        };
        let location = format!("--> {}:{line}:{column}\n", file.display());
        if !error.to_string().contains(&location) || !rendered.contains(&location) {
            return Err(format!("the error does not render {location:?}:\n{error}"));
        }
    }
    Ok(true)
}

#[test]
fn mutated_example_stacks_load_without_panics_quickly_and_every_error_is_located() {
    let dir = example_project_dir();
    let file = dir.path().join("stack.toml");
    // The unmutated example loads, so mutants start from a valid file.
    parse_bytes(&file, EXAMPLE.as_bytes().to_vec()).expect("the example loads");

    let seed = std::env::var("STACKCTL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0007_u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut rejected = 0;
    for case in 0..CASES {
        let mut text = EXAMPLE.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..=3) {
            mutate(&mut rng, &mut text);
        }
        match check(&file, text.clone()) {
            Ok(was_rejected) => rejected += usize::from(was_rejected),
            Err(why) => failures.push(format!(
                "case {case} (seed {seed}): {why}\n--- stack.toml ---\n{}",
                String::from_utf8_lossy(&text)
            )),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} of {CASES} mutants failed; the first:\n{}",
        failures.len(),
        failures[0]
    );
    // The mutations must reach the checks, not only break the syntax or change nothing.
    assert!(
        rejected > CASES / 2 && rejected < CASES,
        "{rejected} of {CASES} rejected"
    );
    // A guard against loads that grow without bound (the /dev/zero schema), not a benchmark:
    // generous enough for a debug build on a loaded 2-core machine.
    assert!(elapsed < Duration::from_secs(300), "took {elapsed:?}");
}
