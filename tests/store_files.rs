//! The store on disk: where it is created and with which rights, what it
//! refuses (foreign owners, open permissions, newer schemas, corrupt or
//! foreign files), and migrating every older schema forward.

mod common;

use std::os::unix::fs::PermissionsExt;

use candor::config::KeyStoreChoice;
use candor::store::migrate::{self, MIGRATIONS};
use candor::store::{Store, StoreError};
use common::*;
use rusqlite::Connection;

#[test]
fn stats_on_a_new_directory_creates_it_private() {
    let t = TestStore::new();
    let out = t.candor_ok(&["stats"]);
    assert!(out.contains("none recorded"), "{out}");
    assert_eq!(mode(&t.paths.data_dir), 0o700);
    assert_eq!(mode(&t.db()), 0o600);
    // WAL side files, whenever present, carry the database's mode.
    for side in ["candor.db-wal", "candor.db-shm"] {
        let p = t.paths.data_dir.join(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
    let json: serde_json::Value = serde_json::from_str(&t.candor_ok(&["stats", "--json"])).unwrap();
    assert_eq!(json["events"], 0);
    assert_eq!(json["schema_version"], migrate::latest_version());
    // Nothing was sealed, so no key was made.
    assert!(!t.paths.key_file().exists());
}

#[test]
fn wal_and_shm_files_are_private_while_the_writer_runs() {
    let t = TestStore::new();
    let (sink, handle) = candor::store::writer::start(t.open(), &small_writer(), info()).unwrap();
    sink.send(mouse_move(now_ns(), 1, 2)).unwrap();
    sink.flush().unwrap();
    for side in ["candor.db", "candor.db-wal", "candor.db-shm", "candor.lock"] {
        let p = t.paths.data_dir.join(side);
        assert!(p.exists(), "{side} missing while writing");
        assert_eq!(mode(&p), 0o600, "{side}");
    }
    assert_eq!(mode(&t.paths.key_file()), 0o600);
    assert_eq!(mode(&t.paths.config_dir), 0o700);
    assert_ne!(
        t.paths.key_file().parent(),
        Some(t.paths.data_dir.as_path())
    );
    handle.shutdown().unwrap();
}

fn info() -> candor::store::writer::SessionInfo {
    candor::store::writer::SessionInfo {
        source: "test".into(),
        synthetic: true,
    }
}

#[test]
fn group_or_world_writable_directories_are_refused() {
    for m in [0o777, 0o770, 0o702] {
        let t = TestStore::new();
        std::fs::create_dir(&t.paths.data_dir).unwrap();
        std::fs::set_permissions(&t.paths.data_dir, std::fs::Permissions::from_mode(m)).unwrap();
        let out = t.candor(&["stats"]);
        assert!(!out.status.success(), "mode {m:o} accepted");
        let err = stderr(&out);
        assert!(err.contains("writable by group or others"), "{err}");
        assert!(!t.db().exists(), "a store was created in a {m:o} directory");
        assert_eq!(
            mode(&t.paths.data_dir),
            m,
            "the refused directory was changed"
        );
    }
}

#[test]
fn readable_directories_are_tightened() {
    let t = TestStore::new();
    std::fs::create_dir(&t.paths.data_dir).unwrap();
    std::fs::set_permissions(&t.paths.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.candor_ok(&["stats"]);
    assert_eq!(mode(&t.paths.data_dir), 0o700);
}

#[test]
fn foreign_owned_directory_and_database_are_refused() {
    if !is_root() {
        return skip_or_fail("changing a file's owner needs root");
    }
    let nobody = 65534;
    let t = TestStore::new();
    std::fs::create_dir(&t.paths.data_dir).unwrap();
    std::fs::set_permissions(&t.paths.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&t.paths.data_dir, Some(nobody), Some(nobody)).unwrap();
    let out = t.candor(&["stats"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("owned by uid 65534, not by you"), "{err}");
    assert!(!t.db().exists());

    // A directory of ours holding someone else's database file.
    let t = TestStore::new();
    t.candor_ok(&["stats"]);
    std::os::unix::fs::chown(t.db(), Some(nobody), Some(nobody)).unwrap();
    let err = stderr(&t.candor(&["stats"]));
    assert!(err.contains("owned by uid 65534"), "{err}");
    let err = stderr(&t.run("candor-export", &["check"]));
    assert!(err.contains("owned by uid 65534"), "{err}");
}

#[test]
fn every_older_schema_migrates_forward_keeping_its_data() {
    for from in 0..migrate::latest_version() {
        let t = TestStore::new();
        std::fs::create_dir(&t.paths.data_dir).unwrap();
        std::fs::set_permissions(&t.paths.data_dir, std::fs::Permissions::from_mode(0o700))
            .unwrap();
        {
            let mut conn = Connection::open(t.db()).unwrap();
            assert_eq!(migrate::migrate_to(&mut conn, from).unwrap(), from);
            if from >= 1 {
                conn.execute_batch(
                    "INSERT INTO sessions(id, started_ns, source, tool_version) VALUES (1, 5, 'old', '0.0.1');
                     INSERT INTO events(session_id, kind, ts_ns, mono_ns, data) VALUES (1, 10, 6, 1, x'0302');
                     INSERT INTO gaps(session_id, start_ns, end_ns, reason, count) VALUES (1, 7, 8, 'paused', 0);",
                )
                .unwrap();
            }
            if from >= 2 {
                candor::consent::ledger::append(
                    &conn,
                    &candor::store::Sealer::new(&[1; 32]).ledger_key(),
                    9,
                    candor::consent::ledger::Action::Pause,
                    serde_json::json!({"reason": "old"}),
                )
                .unwrap();
            }
        }
        std::fs::set_permissions(t.db(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let store = Store::open(&t.paths, KeyStoreChoice::File).unwrap();
        assert_eq!(
            migrate::user_version(store.conn()).unwrap(),
            migrate::latest_version(),
            "from v{from}"
        );
        let count = |sql: &str| -> i64 { store.conn().query_row(sql, [], |r| r.get(0)).unwrap() };
        let expect = i64::from(from >= 1);
        assert_eq!(
            count("SELECT count(*) FROM events"),
            expect,
            "events lost migrating from v{from}"
        );
        assert_eq!(count("SELECT count(*) FROM gaps"), expect);
        assert_eq!(
            count("SELECT count(*) FROM consent_ledger"),
            i64::from(from >= 2)
        );
        assert_eq!(count("SELECT count(*) FROM exports"), 0);
        candor::consent::ledger::verify(store.conn(), None).unwrap();
        // The migrated store reads back like a new one.
        let stats = candor::store::query::stats(&store).unwrap();
        assert_eq!(stats.events as i64, expect);
    }
}

#[test]
fn migrations_leave_the_schema_a_fresh_store_has() {
    let schema = |conn: &Connection| -> Vec<String> {
        conn.prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let fresh = TestStore::new();
    let fresh_schema = schema(fresh.open().conn());
    assert_eq!(MIGRATIONS.len() as u32, migrate::latest_version());
    for from in 1..migrate::latest_version() {
        let t = TestStore::new();
        std::fs::create_dir(&t.paths.data_dir).unwrap();
        let mut conn = Connection::open(t.db()).unwrap();
        migrate::migrate_to(&mut conn, from).unwrap();
        drop(conn);
        assert_eq!(schema(t.open().conn()), fresh_schema, "from v{from}");
    }
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let t = TestStore::new();
    t.candor_ok(&["stats"]);
    {
        let conn = Connection::open(t.db()).unwrap();
        conn.pragma_update(None, "user_version", migrate::latest_version() + 1)
            .unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let before = std::fs::read(t.db()).unwrap();
    for bin in ["candor", "candor-export"] {
        let args: &[&str] = if bin == "candor" {
            &["stats"]
        } else {
            &["check"]
        };
        let out = t.run(bin, args);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("newer than this Candor understands"),
            "{bin}: {err}"
        );
    }
    assert!(matches!(
        Store::open(&t.paths, KeyStoreChoice::File),
        Err(StoreError::TooNew { .. })
    ));
    assert_eq!(
        std::fs::read(t.db()).unwrap(),
        before,
        "the newer store was modified"
    );
}

#[test]
fn a_corrupt_database_file_is_refused_untouched() {
    let t = TestStore::new();
    std::fs::create_dir(&t.paths.data_dir).unwrap();
    std::fs::set_permissions(&t.paths.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(t.db(), &garbage).unwrap();
    std::fs::set_permissions(t.db(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = t.candor(&["stats"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is not a readable SQLite database"), "{err}");
    assert_eq!(std::fs::read(t.db()).unwrap(), garbage);
    let err = stderr(&t.run("candor-export", &["check"]));
    assert!(err.contains("is not a readable SQLite database"), "{err}");
}

#[test]
fn a_damaged_store_gives_a_clear_error() {
    let t = TestStore::new();
    write_synthetic(&t, 20_000);
    // Overwrite interior pages with noise, as a bad disk might.
    let mut bytes = std::fs::read(t.db()).unwrap();
    assert!(
        bytes.len() > 64 * 1024,
        "store too small to damage: {}",
        bytes.len()
    );
    let end = bytes.len() - 4096;
    for b in &mut bytes[8192..end] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(t.db(), &bytes).unwrap();
    let out = t.candor(&["stats"]);
    assert!(!out.status.success(), "stats succeeded on a damaged store");
    let err = stderr(&out);
    assert!(
        err.contains("damaged") || err.contains("not a readable SQLite database"),
        "{err}"
    );
}

#[test]
fn a_foreign_sqlite_database_is_not_adopted() {
    let t = TestStore::new();
    std::fs::create_dir(&t.paths.data_dir).unwrap();
    std::fs::set_permissions(&t.paths.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    {
        let conn = Connection::open(t.db()).unwrap();
        conn.execute_batch("CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    std::fs::set_permissions(t.db(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = stderr(&t.candor(&["stats"]));
    assert!(err.contains("not a Candor store"), "{err}");
    let conn = Connection::open(t.db()).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 0, "the foreign database was migrated");
}

#[test]
fn the_exporter_never_creates_or_changes_a_store() {
    let t = TestStore::new();
    let out = t.run("candor-export", &["check"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no Candor store"), "{}", stderr(&out));
    assert!(
        !t.paths.data_dir.exists(),
        "the exporter created a data directory"
    );

    t.candor_ok(&["stats"]);
    t.open().checkpoint().unwrap();
    let before = std::fs::read(t.db()).unwrap();
    let out = t.run("candor-export", &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 events"));
    assert_eq!(std::fs::read(t.db()).unwrap(), before);
}

#[test]
fn bad_flags_and_config_get_clear_errors() {
    let t = TestStore::new();
    let out = t.candor(&["purge"]);
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2");
    let out = t.candor(&["purge", "--until", "1h"]);
    assert_eq!(out.status.code(), Some(2));
    let out = t.candor(&["purge", "--since", "last tuesday"]);
    assert!(
        stderr(&out).contains("cannot read the time `last tuesday`"),
        "{}",
        stderr(&out)
    );
    let out = t.candor(&["purge", "--since", "1h", "--until", "2h"]);
    assert!(
        stderr(&out).contains("--since must be before --until"),
        "{}",
        stderr(&out)
    );

    std::fs::create_dir_all(&t.paths.config_dir).unwrap();
    std::fs::write(
        t.paths.config_dir.join("config.toml"),
        "[writer]\nbatch_size = 10\n",
    )
    .unwrap();
    let err = stderr(&t.candor(&["stats"]));
    assert!(err.contains("batch_size"), "{err}");
    std::fs::remove_file(t.paths.config_dir.join("config.toml")).unwrap();

    let out = std::process::Command::new(bin_path("candor"))
        .args(["--data-dir"])
        .arg(&t.paths.data_dir)
        .arg("stats")
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env("CANDOR_DATADIR", "/tmp/typo")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("CANDOR_DATADIR"), "{}", stderr(&out));
}
