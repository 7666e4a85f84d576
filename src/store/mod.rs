//! The local store: one SQLite database in a private data directory.
//!
//! Opening checks ownership and permissions, sets WAL mode, migrates the
//! schema and refreshes the readable `kinds` table. Only the writer task
//! (`writer`) appends events, under an exclusive lock file, so there is one
//! writer per store however many processes read it. The exporter opens the
//! store read-only and never migrates or creates anything.

pub mod codec;
pub mod keys;
pub mod migrate;
pub mod purge;
pub mod query;
pub mod scan;
pub mod seal;
pub mod writer;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::config::KeyStoreChoice;
use crate::paths::{self, PathError, Paths};
use crate::registry::Kind;

pub use keys::KeyLocation;
pub use seal::Sealer;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(
        "{path} is not a readable SQLite database (it is corrupt, encrypted by another tool, or not a \
         database at all). Candor will not touch it; move it aside to start a new store"
    )]
    NotADatabase { path: PathBuf },
    #[error("the database is damaged ({0}); Candor will not write to it. Keep a copy before trying to repair it")]
    Corrupt(String),
    #[error("this SQLite database is not a Candor store; Candor will not adopt or change it")]
    NotCandor,
    #[error(
        "the store's schema is version {found}, newer than this Candor understands (up to {known}); \
         upgrade Candor rather than risk damaging the store"
    )]
    TooNew { found: u32, known: u32 },
    #[error("the store's schema is version {found} but {known} is needed; run `candor stats` once to upgrade it")]
    NeedsMigration { found: u32, known: u32 },
    #[error("migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("another Candor writer is using this store ({holder}); stop it first")]
    Locked { holder: String },
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(
        "the key found in the {found_at} does not belong to this store (fingerprint {got}, store expects \
         {expected}); sealed data would be unreadable"
    )]
    KeyMismatch {
        found_at: String,
        got: String,
        expected: String,
    },
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    #[error("the writer has stopped: {0}")]
    WriterGone(String),
    #[error("database error: {0}")]
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e {
            rusqlite::Error::SqliteFailure(f, msg) if f.code == ErrorCode::DatabaseCorrupt => {
                StoreError::Corrupt(
                    msg.unwrap_or_else(|| "database disk image is malformed".into()),
                )
            }
            e => StoreError::Sql(e),
        }
    }
}

impl StoreError {
    /// Errors worth retrying later (a busy database, a full disk), as
    /// opposed to errors that will not go away by waiting.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Sql(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull | ErrorCode::SystemIoFailure
                )
        )
    }
}

/// An open store.
pub struct Store {
    conn: Connection,
    paths: Paths,
    key_choice: KeyStoreChoice,
    sealer: Option<(Sealer, KeyLocation)>,
    read_only: bool,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn classify_open_error(e: StoreError, db: &std::path::Path) -> StoreError {
    match e {
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, _))
            if f.code == ErrorCode::NotADatabase =>
        {
            StoreError::NotADatabase {
                path: db.to_owned(),
            }
        }
        other => other,
    }
}

impl Store {
    /// Opens (creating if needed) the store for reading and writing, and
    /// migrates it to the latest schema.
    pub fn open(paths: &Paths, key_choice: KeyStoreChoice) -> Result<Store, StoreError> {
        paths::ensure_private_dir(&paths.data_dir)?;
        let db = paths.db_file();
        // Created 0600 before SQLite touches it: SQLite gives the -wal and
        // -shm files the same mode as the database.
        paths::ensure_private_file(&db)?;
        for side in ["-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{side}", db.display()));
            if p.exists() {
                paths::check_private_file(&p, true)?;
            }
        }
        let open = || -> Result<Connection, StoreError> {
            let mut conn = Connection::open_with_flags(
                &db,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            migrate::check(&conn)?;
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Corrupt(format!(
                    "cannot switch to WAL mode (got {mode})"
                )));
            }
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", true)?;
            migrate::migrate(&mut conn)?;
            refresh_kinds(&conn)?;
            Ok(conn)
        };
        let conn = open().map_err(|e| classify_open_error(e, &db))?;
        Ok(Store {
            conn,
            paths: paths.clone(),
            key_choice,
            sealer: None,
            read_only: false,
        })
    }

    /// Opens an existing store read-only. Nothing is created or migrated.
    pub fn open_read_only(paths: &Paths, key_choice: KeyStoreChoice) -> Result<Store, StoreError> {
        paths::check_private_dir(&paths.data_dir)?;
        let db = paths.db_file();
        if !db.exists() {
            return Err(PathError::NoStore {
                path: paths.data_dir.clone(),
            }
            .into());
        }
        paths::check_private_file(&db, false)?;
        let open = || -> Result<Connection, StoreError> {
            let conn = Connection::open_with_flags(
                &db,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let version = migrate::check(&conn)?;
            if version < migrate::latest_version() {
                return Err(StoreError::NeedsMigration {
                    found: version,
                    known: migrate::latest_version(),
                });
            }
            conn.pragma_update(None, "query_only", true)?;
            Ok(conn)
        };
        let conn = open().map_err(|e| classify_open_error(e, &db))?;
        Ok(Store {
            conn,
            paths: paths.clone(),
            key_choice,
            sealer: None,
            read_only: true,
        })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Where the store key lives, as recorded when it was created.
    pub fn key_location_recorded(&self) -> Result<Option<String>, StoreError> {
        self.meta("key_location")
    }

    /// The sealer for this store. A key is created only when `create` is set
    /// and the store has never had one; otherwise the key found must match
    /// the fingerprint the store recorded.
    pub fn sealer(&mut self, create: bool) -> Result<&Sealer, StoreError> {
        if self.sealer.is_none() {
            let expected = self.meta("key_fingerprint")?;
            let may_create = create && expected.is_none() && !self.read_only;
            let (key, location) = keys::load(self.key_choice, &self.paths.key_file(), may_create)?;
            let sealer = Sealer::new(&key);
            match expected {
                Some(fp) if fp != sealer.fingerprint() => {
                    return Err(StoreError::KeyMismatch {
                        found_at: location.to_string(),
                        got: sealer.fingerprint().to_owned(),
                        expected: fp,
                    })
                }
                Some(_) => {}
                None if self.read_only => {}
                None => {
                    self.set_meta("key_fingerprint", sealer.fingerprint())?;
                    self.set_meta("key_location", &location.to_string())?;
                    tracing::info!(key = %location, "created the store key");
                }
            }
            self.sealer = Some((sealer, location));
        }
        Ok(&self.sealer.as_ref().expect("set above").0)
    }

    /// Where the loaded key came from (after [`Store::sealer`] succeeded).
    pub fn key_location(&self) -> Option<&KeyLocation> {
        self.sealer.as_ref().map(|(_, l)| l)
    }

    /// Takes the store's single-writer lock, held until the guard drops.
    pub fn lock_writer(&self) -> Result<WriterLock, StoreError> {
        let path = self.paths.lock_file();
        paths::ensure_private_file(&path)?;
        let io = |source| PathError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    holder: if holder.is_empty() {
                        "unknown process".into()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(e) => return Err(io(e.into()).into()),
        }
        file.set_len(0).map_err(io)?;
        write!(file, "pid {}", std::process::id()).map_err(io)?;
        Ok(WriterLock { _file: file })
    }

    /// Folds the WAL back into the database file.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Held by the one writer of a store; the lock is released on drop.
pub struct WriterLock {
    _file: File,
}

fn refresh_kinds(conn: &Connection) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    tx.execute("DELETE FROM kinds", [])?;
    {
        let mut stmt = tx.prepare("INSERT INTO kinds(code, name, scope) VALUES (?1, ?2, ?3)")?;
        for k in Kind::ALL {
            stmt.execute(rusqlite::params![k.code(), k.name(), k.scope().name()])?;
        }
    }
    tx.commit()?;
    Ok(())
}
