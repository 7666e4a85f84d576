//! Schema migrations: `migrations/NNNN_name.sql`, embedded at build time,
//! applied in order and tracked in SQLite's `user_version`.
//!
//! A store written by a newer Candor is refused rather than guessed at, and
//! a SQLite file that is not a Candor store is refused rather than adopted.

use rusqlite::Connection;

use super::StoreError;

/// `PRAGMA application_id` of a Candor store: "CAND" in ASCII.
pub const APPLICATION_ID: i32 = 0x4341_4E44;

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_consent_ledger",
        sql: include_str!("../../migrations/0002_consent_ledger.sql"),
    },
    Migration {
        version: 3,
        name: "0003_exports",
        sql: include_str!("../../migrations/0003_exports.sql"),
    },
];

/// The schema version this build writes.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("user_version {v} is out of range")))
}

/// Checks that `conn` is a Candor store this build can read (or an empty
/// database), and returns its schema version.
pub fn check(conn: &Connection) -> Result<u32, StoreError> {
    let version = user_version(conn)?;
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        if tables > 0 || app_id != 0 {
            return Err(StoreError::NotCandor);
        }
    } else if app_id != APPLICATION_ID {
        return Err(StoreError::NotCandor);
    }
    if version > latest_version() {
        return Err(StoreError::TooNew {
            found: version,
            known: latest_version(),
        });
    }
    Ok(version)
}

/// Applies every migration newer than the store, up to `target`, each in
/// its own transaction.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let start = check(conn)?;
    let mut version = start;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > start && m.version <= target)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql).map_err(|e| StoreError::Migration {
            name: m.name,
            source: e,
        })?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", m.version)?;
        tx.commit()?;
        tracing::debug!(migration = m.name, "applied");
        version = m.version;
    }
    Ok(version)
}

pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    migrate_to(conn, latest_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_names_match_files() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
