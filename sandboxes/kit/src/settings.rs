//! Reading a sandbox's start-up variables.

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct SettingsError {
    name: &'static str,
    value: String,
    reason: String,
}

impl SettingsError {
    pub fn new(name: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Parses variable `name`'s `value` (surrounding blanks ignored).
pub fn parse<T>(name: &'static str, value: &str) -> Result<T, SettingsError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| SettingsError::new(name, value, e.to_string()))
}
