//! Durations (`"1h30m"`), memory (`"512Mi"`) and CPU (`"1000m"`) as written in stack.toml.
// placeholder until the config branch lands
use std::time::Duration;
pub fn format_duration(d: Duration) -> String { format!("{}s", d.as_secs_f64()) }
pub fn parse_duration(s: &str) -> Result<Duration, String> { s.trim_end_matches('s').parse::<f64>().map(Duration::from_secs_f64).map_err(|e| e.to_string()) }
pub fn format_memory(b: u64) -> String { format!("{}Mi", b / 1048576) }
pub fn parse_memory(s: &str) -> Result<u64, String> { s.trim_end_matches("Mi").parse::<u64>().map(|v| v * 1048576).map_err(|e| e.to_string()) }
pub fn format_cpu(m: u32) -> String { if m % 1000 == 0 { format!("{}", m / 1000) } else { format!("{m}m") } }
pub fn parse_cpu(s: &str) -> Result<u32, String> { if let Some(m) = s.strip_suffix('m') { m.parse().map_err(|e: std::num::ParseIntError| e.to_string()) } else { s.parse::<f64>().map(|c| (c * 1000.0).round() as u32).map_err(|e| e.to_string()) } }
