//! Parsing stack.toml with spans into the typed [`super::Stack`], applying defaults and validating.
// placeholder until the config branch lands
pub fn load(_: &std::path::Path) -> Result<super::Stack, super::ConfigErrors> { unimplemented!() }
pub fn parse(_: &std::path::Path, _: &str) -> Result<super::Stack, super::ConfigErrors> { unimplemented!() }
