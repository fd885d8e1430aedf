//! Parsing stack.toml with spans into the typed [`super::Stack`], applying defaults and validating.
