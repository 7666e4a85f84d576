//! Configuration: built-in defaults, then the TOML file, then `CANDOR_*`
//! environment variables. Command-line flags, applied by the binaries, come
//! last.
//!
//! Unknown keys in the file and unknown `CANDOR_*` variables are errors that
//! name the key: a typo in a privacy setting must not be silently ignored.
//! Durations are written with units (`100ms`, `30m`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("unknown environment variable {name}; Candor reads only {known}")]
    UnknownEnv { name: String, known: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Where the store's sealing key lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStoreChoice {
    /// The OS keyring when one answers, else a 0600 file in the config dir.
    #[default]
    Auto,
    /// Only the OS keyring; fail if none is available.
    Keyring,
    /// Only the key file in the config dir.
    File,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    pub writer: WriterConfig,
    pub capture: CaptureConfig,
    pub editor: EditorConfig,
    pub redact: RedactConfig,
    pub ingest: IngestConfig,
    pub shell: ShellConfig,
}

/// Limits of the ingest socket, per connected client.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Messages a client may send per second, sustained.
    pub rate: u32,
    /// Messages a client may send at once above the sustained rate (an
    /// editor reformatting a file sends many edits together).
    pub burst: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            rate: 200,
            burst: 2_000,
        }
    }
}

/// Commands the shell hook never sends.
pub const DEFAULT_SHELL_DENY: &[&str] = &["pass", "gpg", "ssh-add", "op", "security", "*password*"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShellConfig {
    /// A plain word names a program: a command line running it anywhere
    /// (after `sudo`, in a pipeline) is not sent. A pattern with `*`, `?`
    /// or `[` is matched, ignoring case, against the whole command line.
    /// Setting this replaces the default list.
    pub deny: Vec<String>,
}

impl Default for ShellConfig {
    fn default() -> Self {
        ShellConfig {
            deny: DEFAULT_SHELL_DENY.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Identity the redaction engine must always replace, beyond what the OS
/// says (a name used at work, another account, another machine).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactConfig {
    pub names: Vec<String>,
    pub users: Vec<String>,
    pub hosts: Vec<String>,
}

/// Files that usually hold secrets: never read, never recorded.
pub const DEFAULT_DENY: &[&str] = &[
    ".env*",
    "*.pem",
    "*.key",
    "id_*",
    ".ssh/",
    ".aws/",
    ".netrc",
    "*.kdbx",
    "credentials*",
    "secrets.*",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EditorConfig {
    /// Workspace roots to watch (`candor watch add` appends here).
    pub roots: Vec<PathBuf>,
    /// File-name patterns never read nor recorded; a trailing `/` names a
    /// directory. Setting this replaces the default list.
    pub deny: Vec<String>,
    /// Largest file snapshotted.
    #[serde(deserialize_with = "de_size_required")]
    pub snapshot_max_bytes: u64,
    /// Quiet time after a change before it is recorded.
    #[serde(with = "humantime_serde")]
    pub debounce: Duration,
}

impl Default for EditorConfig {
    fn default() -> Self {
        EditorConfig {
            roots: Vec::new(),
            deny: DEFAULT_DENY.iter().map(|s| (*s).to_owned()).collect(),
            snapshot_max_bytes: 1 << 20,
            debounce: Duration::from_millis(300),
        }
    }
}

fn de_size_required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    parse_size(&text).map_err(serde::de::Error::custom)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Mouse moves kept per second (the path is thinned to this rate).
    pub mouse_rate_hz: u32,
    /// Application classes during whose focus no input is recorded. Setting
    /// this replaces the default list (password managers, PIN prompts).
    pub exclude_apps: Vec<String>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            mouse_rate_hz: 30,
            exclude_apps: crate::capture::focus::DEFAULT_EXCLUDED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Overrides the XDG data directory (flags and CANDOR_DATA_DIR win).
    pub data_dir: Option<PathBuf>,
    pub key_store: KeyStoreChoice,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    /// Events the sources may queue before backpressure sets in.
    pub channel_capacity: usize,
    /// Most events committed in one transaction.
    pub batch_max: usize,
    /// Longest an event waits before its batch is committed.
    #[serde(with = "humantime_serde")]
    pub batch_interval: Duration,
    /// The store stops growing at this size (for example "2GiB"); events
    /// that do not fit are counted as dropped gaps until space is freed.
    #[serde(deserialize_with = "de_size")]
    pub max_store_size: Option<u64>,
}

fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    parse_size(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Parses a size such as `512MiB`, `2GiB`, `64KiB` or `1000000` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size (write it like 512MiB or 2GiB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "`{other}` is not a size unit (use KiB, MiB, GiB or TiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is too large"))
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            channel_capacity: 16_384,
            batch_max: 1_000,
            batch_interval: Duration::from_millis(100),
            max_store_size: None,
        }
    }
}

/// The environment variables Candor reads; any other `CANDOR_*` is refused.
pub const ENV_VARS: &[&str] = &[
    "CANDOR_DATA_DIR",
    "CANDOR_CONFIG_DIR",
    "CANDOR_CONFIG",
    "CANDOR_LOG",
    "CANDOR_KEY_STORE",
    "CANDOR_WRITER_CHANNEL_CAPACITY",
    "CANDOR_WRITER_BATCH_MAX",
    "CANDOR_WRITER_BATCH_INTERVAL",
    "CANDOR_WRITER_MAX_STORE_SIZE",
    "CANDOR_CAPTURE_MOUSE_RATE_HZ",
    // Read by the daemon (`daemon::CONSENT_POLL_ENV`); tests slow the poll.
    "CANDOR_CONSENT_POLL_MS",
];

impl Config {
    /// Reads the file at `path` if it exists (it must exist when `required`),
    /// then applies the `CANDOR_*` variables in `env`.
    pub fn load(
        path: &Path,
        required: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Config::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })
    }

    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in env {
            if !name.starts_with("CANDOR_") {
                continue;
            }
            let bad = |message: String| ConfigError::Env {
                name: name.clone(),
                message,
            };
            match name.as_str() {
                "CANDOR_KEY_STORE" => {
                    self.store.key_store = match value.as_str() {
                        "auto" => KeyStoreChoice::Auto,
                        "keyring" => KeyStoreChoice::Keyring,
                        "file" => KeyStoreChoice::File,
                        other => {
                            return Err(bad(format!("`{other}` is not one of auto, keyring, file")))
                        }
                    }
                }
                "CANDOR_WRITER_CHANNEL_CAPACITY" => {
                    self.writer.channel_capacity = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CANDOR_WRITER_BATCH_MAX" => {
                    self.writer.batch_max = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CANDOR_WRITER_BATCH_INTERVAL" => {
                    self.writer.batch_interval = humantime::parse_duration(&value)
                        .map_err(|e| bad(format!("{e} (write it with a unit, e.g. 100ms)")))?
                }
                "CANDOR_CAPTURE_MOUSE_RATE_HZ" => {
                    self.capture.mouse_rate_hz = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "CANDOR_WRITER_MAX_STORE_SIZE" => {
                    self.writer.max_store_size = Some(parse_size(&value).map_err(bad)?)
                }
                // Read by the binaries before the config file is found.
                n if ENV_VARS.contains(&n) => {}
                _ => {
                    return Err(ConfigError::UnknownEnv {
                        name,
                        known: ENV_VARS.join(", "),
                    })
                }
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        if self.writer.channel_capacity == 0 {
            return Err(invalid("writer.channel_capacity", "must be at least 1"));
        }
        if self.writer.batch_max == 0 {
            return Err(invalid("writer.batch_max", "must be at least 1"));
        }
        if !(1..=1000).contains(&self.capture.mouse_rate_hz) {
            return Err(invalid(
                "capture.mouse_rate_hz",
                "must be between 1 and 1000",
            ));
        }
        if self.ingest.rate == 0 || self.ingest.burst == 0 {
            return Err(invalid(
                "ingest.rate",
                "ingest.rate and ingest.burst must be at least 1",
            ));
        }
        if self.writer.batch_interval.is_zero() {
            return Err(invalid("writer.batch_interval", "must be longer than zero"));
        }
        Ok(())
    }
}

/// Rewrites `[editor] roots` in the config file at `path`, keeping the rest
/// of the file (comments included) as it is. Written through a temporary
/// file and a rename, so a crash never leaves half a config.
pub fn write_roots(path: &Path, roots: &[PathBuf]) -> Result<(), ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    // Refuse to rewrite a file that does not parse as a config today.
    Config::parse(path, &text)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
    let mut array = toml_edit::Array::new();
    for r in roots {
        array.push(r.display().to_string());
    }
    if !doc.contains_table("editor") {
        doc["editor"] = toml_edit::table();
    }
    doc["editor"]["roots"] = toml_edit::value(array);
    let write_err = |e: crate::paths::PathError| ConfigError::Invalid {
        key: "editor.roots",
        message: format!("cannot write {}: {e}", path.display()),
    };
    if let Some(dir) = path.parent() {
        crate::paths::ensure_private_dir(dir).map_err(write_err)?;
    }
    crate::paths::write_private_atomic(path, doc.to_string().as_bytes()).map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let c = Config::load(&path, false, env(&[])).unwrap();
        assert_eq!(c.writer.batch_max, 1_000);

        std::fs::write(
            &path,
            "[writer]\nbatch_max = 50\nbatch_interval = \"250ms\"\n",
        )
        .unwrap();
        let c = Config::load(&path, false, env(&[])).unwrap();
        assert_eq!(c.writer.batch_max, 50);
        assert_eq!(c.writer.batch_interval, Duration::from_millis(250));

        let c = Config::load(
            &path,
            false,
            env(&[("CANDOR_WRITER_BATCH_MAX", "7"), ("PATH", "/bin")]),
        )
        .unwrap();
        assert_eq!(c.writer.batch_max, 7);
        assert_eq!(c.writer.batch_interval, Duration::from_millis(250));
    }

    #[test]
    fn unknown_keys_and_variables_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[writer]\nbatch_maxx = 50\n").unwrap();
        let err = Config::load(&path, false, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_maxx"), "{err}");

        std::fs::write(&path, "").unwrap();
        let err = Config::load(&path, false, env(&[("CANDOR_KEYSTORE", "file")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CANDOR_KEYSTORE"), "{err}");
    }

    #[test]
    fn sizes_carry_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("2 gallons").is_err());
        assert!(parse_size("GiB").is_err());
        let c = Config::parse(Path::new("x"), "[writer]\nmax_store_size = \"1MiB\"\n").unwrap();
        assert_eq!(c.writer.max_store_size, Some(1 << 20));
    }

    #[test]
    fn durations_need_units_and_required_files_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[writer]\nbatch_interval = \"100\"\n").unwrap();
        assert!(Config::load(&path, false, env(&[])).is_err());
        let missing = dir.path().join("nope.toml");
        assert!(matches!(
            Config::load(&missing, true, env(&[])),
            Err(ConfigError::Read { .. })
        ));
    }
}
