//! Where the store key lives: the OS keyring (Secret Service) when one
//! answers, otherwise a 0600 file in the config directory, never beside the
//! database. A copy of the data directory alone (a backup, a synced folder,
//! a stolen disk image of it) therefore cannot be unsealed.
//!
//! A key is created only for a store that has never sealed anything; once a
//! store records a key fingerprint, a missing or different key is an error,
//! so data is never silently orphaned under a fresh key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::KeyStoreChoice;
use crate::paths::{self, PathError};

use super::seal::{random_bytes, SealError};

const KEYRING_SERVICE: &str = "candor";
const KEYRING_USER: &str = "store-key";
const FILE_HEADER: &str = "candor-store-key v1";
/// A keyring that does not answer within this time is treated as absent, so
/// a half-configured desktop session cannot hang the daemon.
const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

pub type MasterKey = Zeroizing<[u8; 32]>;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the store key is missing: {tried}. Sealed data cannot be read without it")]
    Missing { tried: String },
    #[error("the OS keyring is not available ({0}); set store.key_store = \"file\" or \"auto\"")]
    KeyringUnavailable(String),
    #[error("the OS keyring refused to store the key: {0}")]
    KeyringWrite(String),
    #[error("key file {path} is malformed: {why}")]
    Malformed { path: PathBuf, why: &'static str },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// Where a key was found or created; shown to the engineer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyLocation {
    Keyring,
    File(PathBuf),
}

impl fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLocation::Keyring => write!(f, "OS keyring (service `{KEYRING_SERVICE}`)"),
            KeyLocation::File(p) => write!(f, "key file {}", p.display()),
        }
    }
}

enum KeyringAnswer {
    Found(MasterKey),
    NoEntry,
    Unavailable(String),
}

fn run_with_timeout<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    // The keyring client may block on D-Bus; a thread keeps that off our path.
    std::thread::Builder::new()
        .name("candor-keyring".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(KEYRING_TIMEOUT).ok()
}

fn keyring_get() -> KeyringAnswer {
    let answer = run_with_timeout(|| {
        keyring::Entry::new(KEYRING_SERVICE, KEYRING_USER).and_then(|e| e.get_secret())
    });
    match answer {
        None => KeyringAnswer::Unavailable("no answer within 3 s".into()),
        Some(Ok(secret)) => match <[u8; 32]>::try_from(secret.as_slice()) {
            Ok(k) => KeyringAnswer::Found(Zeroizing::new(k)),
            Err(_) => KeyringAnswer::Unavailable("the keyring entry is not a 32-byte key".into()),
        },
        Some(Err(keyring::Error::NoEntry)) => KeyringAnswer::NoEntry,
        Some(Err(e)) => KeyringAnswer::Unavailable(e.to_string()),
    }
}

fn keyring_set(key: &MasterKey) -> Result<(), KeyError> {
    let copy = Zeroizing::new(**key);
    let answer = run_with_timeout(move || {
        keyring::Entry::new(KEYRING_SERVICE, KEYRING_USER)
            .and_then(|e| e.set_secret(copy.as_slice()))
    });
    match answer {
        Some(Ok(())) => match keyring_get() {
            KeyringAnswer::Found(back) if *back == **key => Ok(()),
            _ => Err(KeyError::KeyringWrite("the key did not read back".into())),
        },
        Some(Err(e)) => Err(KeyError::KeyringWrite(e.to_string())),
        None => Err(KeyError::KeyringWrite("no answer within 3 s".into())),
    }
}

fn read_key_file(path: &Path) -> Result<Option<MasterKey>, KeyError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PathError::Io {
                path: path.to_owned(),
                source,
            }
            .into())
        }
    };
    if let Some(dir) = path.parent() {
        paths::check_private_dir(dir)?;
    }
    paths::check_private_file(path, true)?;
    let malformed = |why| KeyError::Malformed {
        path: path.to_owned(),
        why,
    };
    let mut lines = text.lines();
    if lines.next() != Some(FILE_HEADER) {
        return Err(malformed("the first line is not the Candor key header"));
    }
    let hex_key = lines
        .next()
        .ok_or_else(|| malformed("the key line is missing"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_key.trim(), key.as_mut_slice())
        .map_err(|_| malformed("the key is not 64 hex digits"))?;
    Ok(Some(key))
}

fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    if let Some(dir) = path.parent() {
        paths::ensure_private_dir(dir)?;
    }
    let text = Zeroizing::new(format!("{FILE_HEADER}\n{}\n", hex::encode(key.as_slice())));
    paths::write_private_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Finds the store key; creates one only when `create` is set (a store that
/// has sealed nothing yet).
pub fn load(
    choice: KeyStoreChoice,
    key_file: &Path,
    create: bool,
) -> Result<(MasterKey, KeyLocation), KeyError> {
    let file_loc = || KeyLocation::File(key_file.to_owned());
    if choice != KeyStoreChoice::Keyring {
        if let Some(key) = read_key_file(key_file)? {
            return Ok((key, file_loc()));
        }
    }
    let keyring = if choice == KeyStoreChoice::File {
        KeyringAnswer::Unavailable("not used (store.key_store = \"file\")".into())
    } else {
        keyring_get()
    };
    let keyring_why = match keyring {
        KeyringAnswer::Found(key) => return Ok((key, KeyLocation::Keyring)),
        KeyringAnswer::NoEntry => None,
        KeyringAnswer::Unavailable(why) => Some(why),
    };
    if !create {
        let keyring_said = keyring_why.clone().unwrap_or_else(|| "no entry".into());
        let tried = match choice {
            KeyStoreChoice::File => format!("no key file at {}", key_file.display()),
            KeyStoreChoice::Keyring => format!("OS keyring: {keyring_said}"),
            KeyStoreChoice::Auto => format!(
                "no key file at {}, OS keyring: {keyring_said}",
                key_file.display()
            ),
        };
        return Err(KeyError::Missing { tried });
    }
    let key: MasterKey = Zeroizing::new(random_bytes()?);
    match (choice, keyring_why) {
        (KeyStoreChoice::File, _) | (KeyStoreChoice::Auto, Some(_)) => {
            write_key_file(key_file, &key)?;
            Ok((key, file_loc()))
        }
        (KeyStoreChoice::Keyring, Some(why)) => Err(KeyError::KeyringUnavailable(why)),
        (_, None) => {
            keyring_set(&key)?;
            Ok((key, KeyLocation::Keyring))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_key_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cfg");
        let path = cfg.join(paths::KEY_FILE);
        assert!(matches!(
            load(KeyStoreChoice::File, &path, false),
            Err(KeyError::Missing { .. })
        ));
        let (k1, loc) = load(KeyStoreChoice::File, &path, true).unwrap();
        assert_eq!(loc, KeyLocation::File(path.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        let (k2, _) = load(KeyStoreChoice::File, &path, false).unwrap();
        assert_eq!(*k1, *k2);
    }

    #[test]
    fn malformed_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(paths::KEY_FILE);
        paths::write_private_atomic(&path, b"candor-store-key v1\nnot-hex\n").unwrap();
        let err = load(KeyStoreChoice::File, &path, false).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
    }
}
