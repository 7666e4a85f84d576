//! Configuration: built-in defaults, then the TOML file, then `CANDOR_*`
//! environment variables. Command-line flags, applied by the binaries, come
//! last.
//!
//! Unknown keys in the file and unknown `CANDOR_*` variables are errors that
//! name the key: a typo in a privacy setting must not be silently ignored.
//! So are values that parse but make no sense (a store too small to hold
//! anything, `/` as a workspace, an invalid deny glob, a batch interval of
//! a thousand years). Durations are written with units (`100ms`, `30m`).
//!
//! The file decides what is recorded, so it is read only if it is ours and
//! nobody else may write or swap it (see [`crate::paths::check_trusted_file`]).

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
    /// `reason` names the path refused (the file, or the directory that
    /// holds it), its owner and its mode.
    #[error("config file {path} refused: {reason}")]
    Untrusted {
        path: PathBuf,
        reason: crate::paths::PathError,
    },
    #[error("config file {path} is larger than {MAX_CONFIG_BYTES} bytes; refusing to read it")]
    TooLarge { path: PathBuf },
}

/// The largest config file read: a real one is a few hundred bytes, and a
/// path pointing at a device or a huge file must not be read without end.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads the config file at `path` if it is one Candor may trust (see
/// [`crate::paths::check_trusted_file`]): its settings decide what is
/// recorded, so a file someone else wrote or may write is refused, naming
/// its owner and mode, exactly as a foreign data directory is.
fn read_trusted(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    crate::paths::check_trusted_file(path, &file).map_err(|reason| ConfigError::Untrusted {
        path: path.to_owned(),
        reason,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    String::from_utf8(bytes).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: format!("not UTF-8: {e}"),
    })
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
        let mut config = match read_trusted(path) {
            Ok(text) => Config::parse(path, &text)?,
            Err(ConfigError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && !required =>
            {
                Config::default()
            }
            Err(e) => return Err(e),
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

    /// Refuses values that parse but make no sense, naming the key: each
    /// would otherwise be silently accepted and act as something other
    /// than what the engineer meant.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        let w = &self.writer;
        if !(1..=MAX_CHANNEL_CAPACITY).contains(&w.channel_capacity) {
            return Err(invalid(
                "writer.channel_capacity",
                &format!("must be between 1 and {MAX_CHANNEL_CAPACITY}"),
            ));
        }
        if !(1..=MAX_BATCH).contains(&w.batch_max) {
            return Err(invalid(
                "writer.batch_max",
                &format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        check_duration("writer.batch_interval", w.batch_interval, BATCH_INTERVAL)?;
        if let Some(size) = w.max_store_size {
            if size < MIN_STORE_SIZE {
                return Err(invalid(
                    "writer.max_store_size",
                    &format!(
                        "{size} bytes is too small to hold a store (at least {} MiB)",
                        MIN_STORE_SIZE >> 20
                    ),
                ));
            }
        }
        if !(1..=1000).contains(&self.capture.mouse_rate_hz) {
            return Err(invalid(
                "capture.mouse_rate_hz",
                "must be between 1 and 1000",
            ));
        }
        if self
            .capture
            .exclude_apps
            .iter()
            .any(|a| a.trim().is_empty())
        {
            return Err(invalid(
                "capture.exclude_apps",
                "an empty application class excludes nothing; remove it",
            ));
        }
        if !(1..=MAX_INGEST_RATE).contains(&self.ingest.rate) {
            return Err(invalid(
                "ingest.rate",
                &format!("must be between 1 and {MAX_INGEST_RATE} messages per second"),
            ));
        }
        if !(1..=MAX_INGEST_RATE).contains(&self.ingest.burst) {
            return Err(invalid(
                "ingest.burst",
                &format!("must be between 1 and {MAX_INGEST_RATE} messages"),
            ));
        }
        let e = &self.editor;
        check_roots(&e.roots, home_dir().as_deref())?;
        if e.deny
            .iter()
            .any(|p| p.trim().is_empty() || p.trim() == "/")
        {
            return Err(invalid(
                "editor.deny",
                "an empty pattern matches nothing; remove it",
            ));
        }
        crate::capture::workspace::Deny::new(&e.deny).map_err(|m| invalid("editor.deny", &m))?;
        if !(1..=MAX_SNAPSHOT).contains(&e.snapshot_max_bytes) {
            return Err(invalid(
                "editor.snapshot_max_bytes",
                &format!("must be between 1 byte and {} MiB", MAX_SNAPSHOT >> 20),
            ));
        }
        check_duration("editor.debounce", e.debounce, DEBOUNCE)?;
        crate::clients::shell::CommandFilter::new(&self.shell.deny)
            .map_err(|m| invalid("shell.deny", &m))?;
        for (key, list) in [
            ("redact.names", &self.redact.names),
            ("redact.users", &self.redact.users),
            ("redact.hosts", &self.redact.hosts),
        ] {
            if list.iter().any(|n| n.trim().is_empty()) {
                return Err(invalid(
                    key,
                    "an empty entry would match everywhere; remove it",
                ));
            }
        }
        Ok(())
    }
}

/// Most events the writer's channel may hold (each a few hundred bytes:
/// beyond this the queue is memory, not a buffer).
pub const MAX_CHANNEL_CAPACITY: usize = 1 << 20;
/// Most events in one transaction.
pub const MAX_BATCH: usize = 100_000;
/// Smallest `max_store_size`: an empty store with its schema and WAL
/// already takes a few hundred KiB.
pub const MIN_STORE_SIZE: u64 = 1 << 20;
/// Largest `snapshot_max_bytes`: a snapshot is held in memory and sealed
/// whole.
pub const MAX_SNAPSHOT: u64 = 64 << 20;
/// Highest ingest rate or burst, per client.
pub const MAX_INGEST_RATE: u32 = 1_000_000;
/// Bounds of `writer.batch_interval`: above a minute, a crash loses a
/// minute of work.
pub const BATCH_INTERVAL: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(60));
/// Bounds of `editor.debounce`: zero records every write; above ten
/// minutes edits merge into one.
pub const DEBOUNCE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(600));

fn check_duration(
    key: &'static str,
    value: Duration,
    (min, max): (Duration, Duration),
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::Invalid {
            key,
            message: format!(
                "{} is out of range: must be between {} and {}",
                humantime::format_duration(value),
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        });
    }
    Ok(())
}

/// Directories that hold the system, not a workspace: a root equal to one
/// of them, or above one, is refused.
const SYSTEM_DIRS: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/proc", "/root", "/run",
    "/sbin", "/sys", "/usr", "/var",
];
/// Directories nothing below which is a workspace: kernel views, devices,
/// system configuration.
const NEVER_BELOW: &[&str] = &["/boot", "/dev", "/etc", "/proc", "/run", "/sys"];

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.home_dir().to_owned())
}

/// Lexically tidies an absolute path (`.` and trailing slashes dropped);
/// `None` for a relative path or one with `..`, whose meaning depends on
/// where Candor runs or on links.
fn tidy(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A workspace root is a project directory: absolute, and neither `/`,
/// the home directory, nor anything above it or above a system directory
/// (watching those would sweep mail, browser profiles and keys into the
/// store, leaving only the deny list between them and the export).
/// Symlinks are resolved first, so `/home/me/all -> /` is seen as `/`.
pub fn check_roots(roots: &[PathBuf], home: Option<&Path>) -> Result<(), ConfigError> {
    let bad = |root: &Path, why: String| ConfigError::Invalid {
        key: "editor.roots",
        message: format!("`{}` {why}", root.display()),
    };
    let home = home.and_then(|h| std::fs::canonicalize(h).ok().or_else(|| tidy(h)));
    for root in roots {
        let Some(lexical) = tidy(root) else {
            return Err(bad(
                root,
                "must be an absolute path without `..` (run `candor watch add DIR`)".into(),
            ));
        };
        let real = std::fs::canonicalize(&lexical).unwrap_or(lexical);
        if real == Path::new("/") {
            return Err(bad(
                root,
                "is the whole file system, not a workspace".into(),
            ));
        }
        if let Some(h) = &home {
            if h.starts_with(&real) {
                return Err(bad(
                    root,
                    format!(
                        "is your home directory or above it ({}): name a project directory inside it",
                        h.display()
                    ),
                ));
            }
        }
        for sys in SYSTEM_DIRS {
            if Path::new(sys).starts_with(&real) {
                return Err(bad(
                    root,
                    format!("is {sys} or above it: system or other users' files, not a workspace"),
                ));
            }
        }
        for sys in NEVER_BELOW {
            if real.starts_with(sys) {
                return Err(bad(
                    root,
                    format!("is inside {sys}, which holds no workspace"),
                ));
            }
        }
    }
    Ok(())
}

/// Rewrites `[editor] roots` in the config file at `path`, keeping the rest
/// of the file (comments included) as it is. Written through a temporary
/// file and a rename, so a crash never leaves half a config.
pub fn write_roots(path: &Path, roots: &[PathBuf]) -> Result<(), ConfigError> {
    let text = match read_trusted(path) {
        Ok(t) => t,
        Err(ConfigError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            String::new()
        }
        Err(e) => return Err(e),
    };
    // Refuse to rewrite a file that does not parse as a config today, or
    // to write roots the loader would refuse.
    Config::parse(path, &text)?;
    check_roots(roots, home_dir().as_deref())?;
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

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path, true, env(&[]))
    }

    /// The key the loader names for `text`, which must be refused.
    fn refused_key(text: &str) -> String {
        match load_text(text) {
            Err(ConfigError::Invalid { key, message }) => {
                assert!(!message.is_empty());
                key.to_owned()
            }
            other => panic!("{text:?} was not refused by key: {other:?}"),
        }
    }

    #[test]
    fn a_store_size_too_small_to_hold_a_store_is_refused() {
        for size in ["0B", "0", "1", "512KiB"] {
            let text = format!("[writer]\nmax_store_size = \"{size}\"\n");
            assert_eq!(refused_key(&text), "writer.max_store_size", "{size}");
        }
        let err = Config::load(
            Path::new("/nonexistent/candor.toml"),
            false,
            env(&[("CANDOR_WRITER_MAX_STORE_SIZE", "0B")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("writer.max_store_size"),
            "{err}"
        );
        assert!(load_text("[writer]\nmax_store_size = \"1MiB\"\n").is_ok());
    }

    #[test]
    fn roots_must_be_project_directories() {
        let home = Path::new("/home/ada");
        for root in [
            "/",
            "/home",
            "/home/ada",
            "/home/ada/",
            "/etc",
            "/etc/ssl",
            "/usr",
            "/var",
            "/proc/self",
            "/sys",
            "relative/dir",
            "/home/ada/../bob",
        ] {
            let err = check_roots(&[PathBuf::from(root)], Some(home)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: "editor.roots",
                        ..
                    }
                ),
                "{root}: {err}"
            );
            assert!(
                err.to_string().contains(root.trim_end_matches('/')),
                "{err}"
            );
        }
        for root in ["/home/ada/src/candor", "/var/www/site", "/srv/project"] {
            check_roots(&[PathBuf::from(root)], Some(home)).unwrap();
        }
        // Other users' homes, whoever runs Candor (root's home is /root).
        assert!(check_roots(&[PathBuf::from("/home")], Some(Path::new("/root"))).is_err());
        // Through the loader, with a symlink to `/` inside a real directory.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("everything");
        std::os::unix::fs::symlink("/", &link).unwrap();
        let err = check_roots(&[link], None).unwrap_err();
        assert!(err.to_string().contains("whole file system"), "{err}");
        assert_eq!(refused_key("[editor]\nroots = [\"/\"]\n"), "editor.roots");
    }

    #[test]
    fn invalid_or_empty_deny_patterns_are_refused() {
        assert_eq!(refused_key("[editor]\ndeny = [\"[z-a]\"]\n"), "editor.deny");
        assert_eq!(
            refused_key("[editor]\ndeny = [\"*.pem\", \"\"]\n"),
            "editor.deny"
        );
        assert_eq!(refused_key("[shell]\ndeny = [\"[z-a]*\"]\n"), "shell.deny");
        assert_eq!(refused_key("[shell]\ndeny = [\"\"]\n"), "shell.deny");
        assert!(load_text("[editor]\ndeny = [\"*.pem\", \"[a-z]*.key\"]\n").is_ok());
    }

    #[test]
    fn absurd_durations_are_refused() {
        for d in ["0s", "2min", "1000years"] {
            let text = format!("[writer]\nbatch_interval = \"{d}\"\n");
            assert_eq!(refused_key(&text), "writer.batch_interval", "{d}");
        }
        for d in ["11min", "1000years"] {
            let text = format!("[editor]\ndebounce = \"{d}\"\n");
            assert_eq!(refused_key(&text), "editor.debounce", "{d}");
        }
        assert!(
            load_text("[editor]\ndebounce = \"0s\"\n[writer]\nbatch_interval = \"1s\"\n").is_ok()
        );
        let err = Config::load(
            Path::new("/nonexistent/candor.toml"),
            false,
            env(&[("CANDOR_WRITER_BATCH_INTERVAL", "1000years")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("writer.batch_interval"),
            "{err}"
        );
    }

    #[test]
    fn counts_and_lists_out_of_range_are_named() {
        assert_eq!(refused_key("[ingest]\nburst = 0\n"), "ingest.burst");
        assert_eq!(refused_key("[ingest]\nrate = 0\n"), "ingest.rate");
        assert_eq!(
            refused_key("[writer]\nchannel_capacity = 100000000\n"),
            "writer.channel_capacity"
        );
        assert_eq!(refused_key("[writer]\nbatch_max = 0\n"), "writer.batch_max");
        assert_eq!(
            refused_key("[editor]\nsnapshot_max_bytes = \"0B\"\n"),
            "editor.snapshot_max_bytes"
        );
        assert_eq!(
            refused_key("[editor]\nsnapshot_max_bytes = \"1GiB\"\n"),
            "editor.snapshot_max_bytes"
        );
        assert_eq!(
            refused_key("[capture]\nexclude_apps = [\"\"]\n"),
            "capture.exclude_apps"
        );
        assert_eq!(refused_key("[redact]\nnames = [\" \"]\n"), "redact.names");
    }

    #[test]
    fn a_config_file_others_may_write_is_refused_naming_owner_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[capture]\nexclude_apps = [\"x\"]\n").unwrap();
        for mode in [0o666, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Config::load(&path, true, env(&[])).unwrap_err();
            assert!(matches!(err, ConfigError::Untrusted { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(&format!("mode {mode:04o}")), "{text}");
            assert!(text.contains("owner uid"), "{text}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&path, true, env(&[])).is_ok());
        // A directory others may write: they could swap the file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Config::load(&path, true, env(&[])).unwrap_err().to_string();
        assert!(err.contains("mode 0777"), "{err}");
        // A symlink from a private directory to a file in that open one.
        let private = tempfile::tempdir().unwrap();
        let link = private.path().join("config.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = Config::load(&link, true, env(&[])).unwrap_err().to_string();
        assert!(err.contains("mode 0777"), "{err}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(Config::load(&link, true, env(&[])).is_ok());
        // `watch add` refuses to rewrite it too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(write_roots(&path, &[]).is_err());
    }

    #[test]
    fn a_config_path_to_a_device_is_refused_without_reading_it() {
        let err = Config::load(Path::new("/dev/zero"), true, env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Untrusted { .. }), "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
