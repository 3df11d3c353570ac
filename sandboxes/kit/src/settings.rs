//! Reading a sandbox's start-up variables: a sandbox says how its settings
//! come from [`Variables`] ([`FromVariables`]); the process reads them from
//! its environment, a test from a table.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

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
    T: FromStr,
    T::Err: Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| SettingsError::new(name, value, e.to_string()))
}

/// Variables looked up by name; empty (or blank) values count as unset.
pub struct Variables<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Variables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: never printed.
        f.debug_struct("Variables").finish_non_exhaustive()
    }
}

impl Variables<'_> {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// Parses `name` into `target` when it is set; otherwise `target` keeps
    /// its default.
    pub fn parse_into<T>(&self, name: &'static str, target: &mut T) -> Result<(), SettingsError>
    where
        T: FromStr,
        T::Err: Display,
    {
        if let Some(value) = self.get(name) {
            *target = parse(name, &value)?;
        }
        Ok(())
    }

    /// Like [`Self::parse_into`], for a duration given in milliseconds.
    pub fn millis_into(
        &self,
        name: &'static str,
        target: &mut Duration,
    ) -> Result<(), SettingsError> {
        if let Some(value) = self.get(name) {
            *target = Duration::from_millis(parse(name, &value)?);
        }
        Ok(())
    }
}

/// A sandbox's settings, read from its variables.
pub trait FromVariables: Sized {
    fn from_variables(variables: &Variables<'_>) -> Result<Self, SettingsError>;

    /// Reads the process environment.
    fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (testable without touching the
    /// process environment).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        Self::from_variables(&Variables { lookup: &lookup })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Sample {
        port: u16,
        slow: Duration,
    }

    impl FromVariables for Sample {
        fn from_variables(variables: &Variables<'_>) -> Result<Self, SettingsError> {
            let mut sample = Self::default();
            variables.parse_into("PORT", &mut sample.port)?;
            variables.millis_into("SLOW_MS", &mut sample.slow)?;
            Ok(sample)
        }
    }

    fn from(vars: &[(&str, &str)]) -> Result<Sample, SettingsError> {
        Sample::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn set_values_are_parsed_and_blank_ones_keep_the_default() {
        let sample = from(&[("PORT", " 8010 "), ("SLOW_MS", "  ")]).unwrap();
        assert_eq!(sample.port, 8010);
        assert_eq!(sample.slow, Duration::ZERO);
        let sample = from(&[("SLOW_MS", "250")]).unwrap();
        assert_eq!(sample.slow, Duration::from_millis(250));
    }

    #[test]
    fn an_unusable_value_names_its_variable() {
        let error = from(&[("PORT", "eighty")]).unwrap_err().to_string();
        assert!(error.starts_with("PORT=\"eighty\""), "{error}");
    }
}
