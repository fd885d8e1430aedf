//! Durations (`"1h30m"`), memory (`"512Mi"`) and CPU (`"1000m"`) as written in stack.toml.
