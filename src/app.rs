//! What both binaries share at their edge: resolving paths and config from
//! flags and the environment, and reading times given on the command line.
//! Kept in the library so that it is tested like the rest.

use std::path::PathBuf;

use crate::config::{Config, ConfigError};
use crate::paths::{self, PathError, Paths};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the time `{input}`: use RFC 3339 (2026-11-28T09:30:00Z), a date (2026-11-28, midnight UTC), or a span ago (90m, 7d)")]
    BadTime { input: String },
}

/// Resolved paths and configuration for one command.
pub struct Context {
    pub paths: Paths,
    pub config: Config,
    /// The config file in use (it may not exist yet).
    pub config_file: PathBuf,
}

impl Context {
    /// `data_dir` and `config_file` come from flags (clap already folds in
    /// CANDOR_DATA_DIR and CANDOR_CONFIG); CANDOR_CONFIG_DIR moves the
    /// config directory, which also holds the key file.
    pub fn load(
        data_dir: Option<PathBuf>,
        config_file: Option<PathBuf>,
    ) -> Result<Context, AppError> {
        let config_dir = std::env::var_os("CANDOR_CONFIG_DIR").map(PathBuf::from);
        let (file, required) = match config_file {
            Some(f) => (f, true),
            None => (
                paths::resolve_config_dir(config_dir.clone())?.join(paths::CONFIG_FILE),
                false,
            ),
        };
        let config = Config::load(&file, required, std::env::vars())?;
        let data_dir = data_dir.or_else(|| config.store.data_dir.clone());
        let paths = Paths::resolve(data_dir, config_dir)?;
        Ok(Context {
            paths,
            config,
            config_file: file,
        })
    }

    /// Opens the store for reading and writing, creating it if needed.
    pub fn open_store(&self) -> Result<Store, AppError> {
        Ok(Store::open(&self.paths, self.config.store.key_store)?)
    }

    /// Opens an existing store read-only.
    pub fn open_store_read_only(&self) -> Result<Store, AppError> {
        Ok(Store::open_read_only(
            &self.paths,
            self.config.store.key_store,
        )?)
    }
}

/// Parses a time from the command line into wall-clock ns.
pub fn parse_time(input: &str, now_ns: i64) -> Result<i64, AppError> {
    let bad = || AppError::BadTime {
        input: input.to_owned(),
    };
    let s = input.trim();
    if s == "now" {
        return Ok(now_ns);
    }
    let to_ns = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return to_ns(t).ok_or_else(bad);
    }
    if s.len() == 10 && s.as_bytes()[4] == b'-' {
        if let Ok(t) = humantime::parse_rfc3339(&format!("{s}T00:00:00Z")) {
            return to_ns(t).ok_or_else(bad);
        }
    }
    if let Ok(d) = humantime::parse_duration(s) {
        let ago = i64::try_from(d.as_nanos()).map_err(|_| bad())?;
        return Ok(now_ns.saturating_sub(ago));
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_three_forms() {
        let now = 1_800_000_000_000_000_000;
        assert_eq!(parse_time("1970-01-02", now).unwrap(), 86_400_000_000_000);
        assert_eq!(
            parse_time("1970-01-01T00:00:01Z", now).unwrap(),
            1_000_000_000
        );
        assert_eq!(
            parse_time("90m", now).unwrap(),
            now - 90 * 60 * 1_000_000_000
        );
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert!(parse_time("yesterday-ish", now).is_err());
        assert!(parse_time("", now).is_err());
    }
}
