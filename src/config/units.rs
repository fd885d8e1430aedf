//! Durations (`"1h30m"`), memory (`"512Mi"`) and CPU (`"1000m"`) as written in stack.toml.
//!
//! The parsers also accept the forms Google's APIs return (`"0.100s"`, `"3600s"`, `"1000m"`,
//! `"512Mi"`), so one normalisation serves both sides of a diff. The formatters print the
//! shortest readable form, and `parse(format(x)) == x` for every value.

use std::fmt;
use std::time::Duration;

/// What a unit string was supposed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Duration,
    Memory,
    Cpu,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantity::Duration => "duration",
            Quantity::Memory => "memory size",
            Quantity::Cpu => "cpu",
        })
    }
}

/// A string that is not a valid duration, memory size or cpu amount, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {quantity} `{input}`: {reason}")]
pub struct UnitError {
    pub quantity: Quantity,
    pub input: String,
    pub reason: String,
}

impl UnitError {
    fn new(quantity: Quantity, input: &str, reason: impl Into<String>) -> Self {
        Self {
            quantity,
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Duration units in the order they must appear, with their length in nanoseconds.
const DURATION_UNITS: [(&str, u128); 5] = [
    ("d", 86_400 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("s", NANOS_PER_SECOND),
    ("ms", 1_000_000),
];

/// A non-negative decimal number kept exact: `digits / 10^scale`.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    digits: u128,
    scale: u32,
}

impl Decimal {
    /// Multiplies by `factor` and returns the result if it is a whole number.
    fn times_exact(self, factor: u128) -> Option<u128> {
        let product = self.digits.checked_mul(factor)?;
        let divisor = 10u128.checked_pow(self.scale)?;
        (product % divisor == 0).then_some(product / divisor)
    }

    /// Multiplies by `factor`, dropping any fraction below one.
    fn times_truncated(self, factor: u128) -> Option<u128> {
        let product = self.digits.checked_mul(factor)?;
        Some(product / 10u128.checked_pow(self.scale)?)
    }
}

/// Splits a leading unsigned decimal number (`12`, `0.5`, `.5`, `3.`) off `input`.
fn split_decimal(input: &str) -> Option<(Decimal, &str)> {
    let end = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(input.len());
    let (number, rest) = input.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    // 30 significant digits is far beyond any real value and keeps the arithmetic in u128.
    if whole.len() + fraction.len() > 30 {
        return None;
    }
    let mut digits: u128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        digits = digits * 10 + u128::from(c.to_digit(10)?);
    }
    let scale = u32::try_from(fraction.len()).ok()?;
    Some((Decimal { digits, scale }, rest))
}

/// Parses `"0.1s"`, `"90s"`, `"10m"`, `"1h30m"`, `"400d"`, `"100ms"`, and Google's `"0.100s"`.
///
/// Components may combine in d, h, m, s, ms order, each at most once; `"0"` alone is zero.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let fail = |reason: &str| UnitError::new(Quantity::Duration, input, reason);
    let text = input.trim();
    if text.is_empty() {
        return Err(fail("it is empty"));
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(fail("durations cannot be negative"));
    }
    let mut rest = text;
    let mut total_nanos: u128 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let (number, after_number) = split_decimal(rest)
            .ok_or_else(|| fail("expected a number followed by d, h, m, s or ms"))?;
        let unit_len = after_number
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            return Err(fail(
                "a number needs a unit: d, h, m, s or ms (e.g. \"300s\")",
            ));
        }
        let position = DURATION_UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(|| fail(&format!("unknown unit `{unit}`; use d, h, m, s or ms")))?;
        if position < next_unit {
            return Err(fail(
                "write units once each, largest first: d, h, m, s, ms (e.g. \"1h30m\")",
            ));
        }
        next_unit = position + 1;
        let nanos = number
            .times_truncated(DURATION_UNITS[position].1)
            .ok_or_else(|| fail("the number is too large"))?;
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| fail("the number is too large"))?;
        rest = after_unit;
    }
    let seconds = u64::try_from(total_nanos / NANOS_PER_SECOND)
        .map_err(|_| fail("the number is too large"))?;
    let subsec = u32::try_from(total_nanos % NANOS_PER_SECOND)
        .map_err(|_| fail("the number is too large"))?;
    Ok(Duration::new(seconds, subsec))
}

/// The shortest readable form: `0.1s`, `1s`, `1m30s`, `5m`, `1h30m`, `400d`, `0s`.
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    let mut out = String::new();
    for (name, unit_seconds) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        let count = seconds / unit_seconds;
        if count > 0 {
            out.push_str(&format!("{count}{name}"));
            seconds %= unit_seconds;
        }
    }
    if seconds > 0 || nanos > 0 || out.is_empty() {
        out.push_str(&seconds.to_string());
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        out.push('s');
    }
    out
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Memory suffixes: Kubernetes-style binary (`Ki`..`Ti`) and decimal (`K`/`k`..`T`).
const MEMORY_UNITS: [(&str, u64); 9] = [
    ("Ki", KIB),
    ("Mi", MIB),
    ("Gi", GIB),
    ("Ti", TIB),
    ("K", 1_000),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
];

/// Parses `"512Mi"`, `"1Gi"`, `"0.5Gi"`, `"2G"`, `"1000000"` (bytes) into a number of bytes.
pub fn parse_memory(input: &str) -> Result<u64, UnitError> {
    let fail = |reason: &str| UnitError::new(Quantity::Memory, input, reason);
    let text = input.trim();
    if text.is_empty() {
        return Err(fail("it is empty"));
    }
    let (number, suffix) = split_decimal(text)
        .ok_or_else(|| fail("expected a number followed by Ki, Mi, Gi or Ti (e.g. \"512Mi\")"))?;
    let multiplier = if suffix.is_empty() {
        1
    } else {
        MEMORY_UNITS
            .iter()
            .find(|(name, _)| *name == suffix)
            .map(|(_, bytes)| *bytes)
            .ok_or_else(|| {
                fail(&format!(
                    "unknown unit `{suffix}`; use Ki, Mi, Gi, Ti (or K, M, G, T)"
                ))
            })?
    };
    let bytes = number
        .times_exact(u128::from(multiplier))
        .ok_or_else(|| fail("it is not a whole number of bytes"))?;
    u64::try_from(bytes).map_err(|_| fail("the number is too large"))
}

/// The largest binary unit that divides exactly (`512Mi`, `1Gi`, `1536Mi`), else plain bytes.
pub fn format_memory(bytes: u64) -> String {
    for (name, unit) in [("Ti", TIB), ("Gi", GIB), ("Mi", MIB), ("Ki", KIB)] {
        if bytes > 0 && bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Parses a CPU amount written as cores (`"1"`, `"0.5"`, `"2"`) or millicores (`"1000m"`).
pub fn parse_cpu(input: &str) -> Result<u32, UnitError> {
    let fail = |reason: &str| UnitError::new(Quantity::Cpu, input, reason);
    let text = input.trim();
    if text.is_empty() {
        return Err(fail("it is empty"));
    }
    let (number, suffix) = split_decimal(text)
        .ok_or_else(|| fail("expected cores like \"1\" or \"0.5\", or millicores like \"500m\""))?;
    let millis = match suffix {
        "" => number
            .times_exact(1000)
            .ok_or_else(|| fail("it is not a whole number of millicores"))?,
        "m" => number
            .times_exact(1)
            .ok_or_else(|| fail("millicores must be a whole number"))?,
        other => {
            return Err(fail(&format!(
                "unknown unit `{other}`; write cores (\"1\") or millicores (\"500m\")"
            )));
        }
    };
    u32::try_from(millis).map_err(|_| fail("the number is too large"))
}

/// Converts a TOML number of cores (`1`, `0.5`) to millicores.
pub fn cpu_millis_from_cores(cores: f64) -> Result<u32, UnitError> {
    let input = cores.to_string();
    if !cores.is_finite() || cores < 0.0 {
        return Err(UnitError::new(
            Quantity::Cpu,
            &input,
            "cores must be a positive number",
        ));
    }
    let millis = cores * 1000.0;
    let rounded = millis.round();
    if (millis - rounded).abs() > 1e-6 || rounded > f64::from(u32::MAX) {
        return Err(UnitError::new(
            Quantity::Cpu,
            &input,
            "it is not a whole number of millicores",
        ));
    }
    // Exact: `rounded` is a whole number within u32's range.
    Ok(rounded as u32)
}

/// Whole cores as `"1"`, `"2"`; anything else in millicores, `"500m"`.
pub fn format_cpu(millis: u32) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_parse_stack_toml_forms() {
        assert_eq!(parse_duration("0.1s").unwrap(), ms(100));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("400d").unwrap(),
            Duration::from_secs(400 * 86_400)
        );
        assert_eq!(parse_duration("100ms").unwrap(), ms(100));
        assert_eq!(
            parse_duration("1d2h3m4s5ms").unwrap(),
            Duration::from_secs(93_784) + ms(5)
        );
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn durations_parse_google_forms() {
        assert_eq!(parse_duration("0.100s").unwrap(), ms(100));
        assert_eq!(parse_duration("3600s").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("3.000000001s").unwrap(), Duration::new(3, 1));
    }

    #[test]
    fn durations_reject_malformed_input_with_a_reason() {
        for bad in [
            "",
            "300",
            "5 minutes",
            "1m1h",
            "1s1s",
            "-1s",
            "1x",
            "s",
            "1..5s",
            "1.2.3s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err.quantity, Quantity::Duration, "{bad}");
            assert!(!err.reason.is_empty());
        }
        assert!(
            parse_duration("1m1h")
                .unwrap_err()
                .reason
                .contains("largest first")
        );
        assert!(
            parse_duration("300")
                .unwrap_err()
                .reason
                .contains("needs a unit")
        );
        assert!(
            parse_duration("5y")
                .unwrap_err()
                .reason
                .contains("unknown unit `y`")
        );
    }

    #[test]
    fn durations_format_shortest_and_round_trip() {
        let cases = [
            (ms(100), "0.1s"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(400 * 86_400), "400d"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(90_000), "1d1h"),
            (Duration::from_secs(61) + ms(500), "1m1.5s"),
            (Duration::new(0, 1), "0.000000001s"),
            (Duration::ZERO, "0s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text).unwrap(), duration, "{text}");
        }
    }

    #[test]
    fn memory_parses_binary_decimal_and_bytes() {
        assert_eq!(parse_memory("512Mi").unwrap(), 512 * MIB);
        assert_eq!(parse_memory("1Gi").unwrap(), GIB);
        assert_eq!(parse_memory("4Ki").unwrap(), 4096);
        assert_eq!(parse_memory("1Ti").unwrap(), TIB);
        assert_eq!(parse_memory("0.5Gi").unwrap(), 512 * MIB);
        assert_eq!(parse_memory("2G").unwrap(), 2_000_000_000);
        assert_eq!(parse_memory("1k").unwrap(), 1000);
        assert_eq!(parse_memory("1M").unwrap(), 1_000_000);
        assert_eq!(parse_memory("1T").unwrap(), 1_000_000_000_000);
        assert_eq!(parse_memory("1048576").unwrap(), MIB);
    }

    #[test]
    fn memory_rejects_malformed_input() {
        for bad in ["", "Mi", "512MB", "1.5", "0.1Ki", "lots"] {
            assert_eq!(
                parse_memory(bad).unwrap_err().quantity,
                Quantity::Memory,
                "{bad}"
            );
        }
        assert!(
            parse_memory("512MB")
                .unwrap_err()
                .reason
                .contains("unknown unit `MB`")
        );
    }

    #[test]
    fn memory_formats_largest_exact_binary_unit_and_round_trips() {
        let cases = [
            (512 * MIB, "512Mi"),
            (GIB, "1Gi"),
            (1536 * MIB, "1536Mi"),
            (2 * TIB, "2Ti"),
            (3 * KIB, "3Ki"),
            (1_000_000, "1000000"),
            (0, "0"),
        ];
        for (bytes, text) in cases {
            assert_eq!(format_memory(bytes), text);
            assert_eq!(parse_memory(text).unwrap(), bytes, "{text}");
        }
    }

    #[test]
    fn cpu_parses_cores_and_millicores() {
        assert_eq!(parse_cpu("1").unwrap(), 1000);
        assert_eq!(parse_cpu("0.5").unwrap(), 500);
        assert_eq!(parse_cpu("2").unwrap(), 2000);
        assert_eq!(parse_cpu("0.08").unwrap(), 80);
        assert_eq!(parse_cpu("1000m").unwrap(), 1000);
        assert_eq!(parse_cpu("500m").unwrap(), 500);
        assert_eq!(cpu_millis_from_cores(1.0).unwrap(), 1000);
        assert_eq!(cpu_millis_from_cores(0.5).unwrap(), 500);
        assert_eq!(cpu_millis_from_cores(0.1).unwrap(), 100);
    }

    #[test]
    fn cpu_rejects_malformed_input() {
        for bad in ["", "one", "1 core", "0.0005", "1.5m", "2c"] {
            assert_eq!(parse_cpu(bad).unwrap_err().quantity, Quantity::Cpu, "{bad}");
        }
        assert!(cpu_millis_from_cores(-1.0).is_err());
        assert!(cpu_millis_from_cores(0.0001).is_err());
    }

    #[test]
    fn cpu_formats_whole_cores_else_millicores_and_round_trips() {
        for (millis, text) in [
            (1000, "1"),
            (2000, "2"),
            (500, "500m"),
            (1500, "1500m"),
            (80, "80m"),
        ] {
            assert_eq!(format_cpu(millis), text);
            assert_eq!(parse_cpu(text).unwrap(), millis);
        }
    }
}
