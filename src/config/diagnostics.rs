//! Config errors that name the file, line, column and the fix; all of them, not only the first.
// placeholder until the config branch lands
#[derive(Debug)]
pub struct ConfigError;
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);
