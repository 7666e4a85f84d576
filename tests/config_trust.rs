//! A config file decides what is recorded (which applications are
//! excluded, where the store lives), so one that another account owns, or
//! may write, is refused with its path, owner and mode, as a foreign data
//! directory is. Run through the real binary with `CANDOR_CONFIG`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// A throwaway account, removed when dropped.
struct TempUser {
    name: String,
    uid: u32,
}

impl TempUser {
    fn create() -> TempUser {
        let name = format!("cndr{}", std::process::id());
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name)
            .output()
            .expect("run useradd");
        assert!(out.status.success(), "useradd: {}", stderr(&out));
        let id = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
        TempUser { name, uid }
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// `candor stats` with `CANDOR_CONFIG` pointing at `config`, which moves
/// the store to `data`: if the config were used, the store would appear
/// there.
fn stats_with(t: &TestStore, config: &Path) -> Output {
    Command::new(bin_path("candor"))
        .arg("stats")
        .env("CANDOR_CONFIG", config)
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env("CANDOR_KEY_STORE", "file")
        .env_remove("CANDOR_DATA_DIR")
        .output()
        .expect("run candor")
}

fn write_config(t: &TestStore, name: &str) -> std::path::PathBuf {
    let path = t.tmp.path().join(name);
    std::fs::write(
        &path,
        format!(
            "[store]\ndata_dir = \"{}\"\n[capture]\nexclude_apps = []\n",
            t.paths.data_dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

#[test]
fn a_config_file_owned_by_another_account_is_refused() {
    if !is_root() {
        return skip_or_fail("creating another account and chowning a file to it needs root");
    }
    let other = TempUser::create();
    let t = TestStore::new();
    let config = write_config(&t, "theirs.toml");
    std::os::unix::fs::chown(&config, Some(other.uid), None).unwrap();
    let out = stats_with(&t, &config);
    assert!(!out.status.success(), "a foreign config was used");
    let err = stderr(&out);
    assert!(err.contains(&config.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("owned by uid {}", other.uid)),
        "{err}"
    );
    assert!(err.contains("mode 0644"), "{err}");
    assert!(
        !t.paths.data_dir.exists(),
        "the foreign config's data_dir was used"
    );

    // The same file, ours again, is used: the refusal was about the owner.
    std::os::unix::fs::chown(&config, Some(0), None).unwrap();
    let out = stats_with(&t, &config);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.paths.data_dir.join("candor.db").exists());
}

#[test]
fn a_config_file_of_ours_that_others_may_write_is_refused() {
    let t = TestStore::new();
    let config = write_config(&t, "open.toml");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = stats_with(&t, &config);
    assert!(!out.status.success(), "a world-writable config was used");
    let err = stderr(&out);
    assert!(err.contains(&config.display().to_string()), "{err}");
    assert!(err.contains("mode 0666"), "{err}");
    assert!(err.contains("owner uid"), "{err}");
    assert!(
        !t.paths.data_dir.exists(),
        "the open config's data_dir was used"
    );

    // Tightened, it is used.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = stats_with(&t, &config);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn config_values_that_make_no_sense_are_refused_naming_the_key() {
    let t = TestStore::new();
    for (text, key) in [
        (
            "[writer]\nmax_store_size = \"0B\"\n",
            "writer.max_store_size",
        ),
        ("[editor]\nroots = [\"/\"]\n", "editor.roots"),
        ("[editor]\nroots = [\"/home\"]\n", "editor.roots"),
        ("[editor]\ndeny = [\"[z-a]\"]\n", "editor.deny"),
        ("[shell]\ndeny = [\"[z-a]*\"]\n", "shell.deny"),
        (
            "[writer]\nbatch_interval = \"1000years\"\n",
            "writer.batch_interval",
        ),
        ("[editor]\ndebounce = \"1000years\"\n", "editor.debounce"),
    ] {
        let config = t.tmp.path().join("bad.toml");
        std::fs::write(&config, text).unwrap();
        let out = stats_with(&t, &config);
        assert!(!out.status.success(), "{text:?} was accepted");
        let err = stderr(&out);
        assert!(err.contains(key), "{text:?}: {err}");
    }
}
