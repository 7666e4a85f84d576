//! What an export leaves on disk besides its data: every directory 0700
//! and every file 0600 whatever the umask (an export is redacted, but still
//! someone's work), and no partial export left behind by a killed run once
//! the next export into the same parent has looked (removing only its own
//! stale ones, identified by their marker, and saying so).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `candor-export episodes` into `out`, all three formats, under umask 022.
fn export_cmd(t: &TestStore, out: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(bin_path("candor-export"))
        .arg("--data-dir")
        .arg(&t.paths.data_dir)
        .args(["episodes", "--synthetic", "--quiet"])
        .args(["--format", "jsonl,parquet,progsnap2", "--out"])
        .arg(out)
        .env("CANDOR_CONFIG_DIR", &t.paths.config_dir)
        .env("CANDOR_KEY_STORE", "file")
        .env_remove("CANDOR_DATA_DIR")
        .env_remove("CANDOR_CONFIG");
    cmd
}

fn export_ok(t: &TestStore, out: &Path) -> String {
    let o = export_cmd(t, out).output().unwrap();
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Every entry under `dir` (not following links), `dir` included.
fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
    into.push(dir.to_owned());
    if std::fs::symlink_metadata(dir).unwrap().is_dir() {
        for e in std::fs::read_dir(dir).unwrap() {
            walk(&e.unwrap().path(), into);
        }
    }
}

#[test]
fn every_file_and_directory_of_an_export_is_private_whatever_the_umask() {
    let t = TestStore::new();
    write_synthetic(&t, 3_000);
    let parent = t.tmp.path().join("exports");
    std::fs::create_dir(&parent).unwrap();
    let out = parent.join("ds");
    export_ok(&t, &out);
    let mut all = Vec::new();
    walk(&out, &mut all);
    let (mut dirs, mut files) = (0, 0);
    for p in &all {
        let meta = std::fs::symlink_metadata(p).unwrap();
        if meta.is_dir() {
            dirs += 1;
            assert_eq!(mode(p), 0o700, "{}", p.display());
        } else {
            assert!(meta.is_file(), "{} is neither file nor dir", p.display());
            files += 1;
            assert_eq!(mode(p), 0o600, "{}", p.display());
        }
    }
    for format in ["episodes.jsonl", "parquet", "progsnap2", "manifest.json"] {
        assert!(
            all.iter().any(|p| p.starts_with(out.join(format))),
            "no {format} in the export"
        );
    }
    eprintln!("checked {dirs} directories and {files} files of the export");
    assert!(dirs > 5 && files > 5, "{dirs} dirs, {files} files");
    assert!(
        !all.iter().any(|p| p.ends_with(".candor-partial-export")),
        "the partial marker was left in the finished export"
    );
    // The export still verifies with its files private.
    let v = t.run("candor-export", &["verify", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", stderr(&v));
}

fn partials(parent: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with('.') && n.contains(".partial-")
        })
        .collect();
    v.sort();
    v
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A child that is killed if the test ends early, not left stopped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an export into `out` and stops it (SIGSTOP) once its partial
/// directory exists, marker written; returns it stopped with that path.
fn start_and_freeze(t: &TestStore, out: &Path) -> (Child, PathBuf) {
    let parent = out.parent().unwrap();
    let before = partials(parent);
    let mut child = export_cmd(t, out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let new: Vec<PathBuf> = partials(parent)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if let Some(p) = new.first() {
            if p.join(".candor-partial-export").exists() {
                signal(&child, "-STOP");
                return (child, p.clone());
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the export ended ({status}) before it could be stopped midway");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no partial appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_killed_exports_partial_is_removed_by_the_next_export_and_nothing_else_is() {
    let t = TestStore::new();
    write_synthetic(&t, 8_000);
    let parent = t.tmp.path().join("exports");
    std::fs::create_dir(&parent).unwrap();

    // Lookalikes: no marker, a marker that is not Candor's, a marker that
    // does not parse. None may be touched.
    let lookalikes = [
        parent.join(".photos.partial-abc123"),
        parent.join(".other.partial-def456"),
        parent.join(".garbled.partial-ghi789"),
    ];
    for d in &lookalikes {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("keep.txt"), "mine").unwrap();
    }
    std::fs::write(
        lookalikes[1].join(".candor-partial-export"),
        r#"{"tool":"rsync","pid":1,"start_ticks":1,"boot_id":null}"#,
    )
    .unwrap();
    std::fs::write(lookalikes[2].join(".candor-partial-export"), "\0\0not json").unwrap();

    // A running (stopped) export's partial survives another export.
    let (running, its_partial) = start_and_freeze(&t, &parent.join("first"));
    let mut running = KillOnDrop(running);
    let said = export_ok(&t, &parent.join("second"));
    assert!(!said.contains("removed"), "{said}");
    assert!(
        its_partial.exists(),
        "a running export's partial was removed"
    );

    // Killed, it is stale: the next export removes it and says so.
    signal(&running.0, "-KILL");
    running.0.wait().unwrap();
    assert!(its_partial.join(".candor-partial-export").exists());
    assert!(!parent.join("first").exists());
    let said = export_ok(&t, &parent.join("third"));
    assert!(
        said.contains(&format!("removed {}", its_partial.display())),
        "{said}"
    );
    assert!(said.contains("no longer running"), "{said}");
    assert!(
        !its_partial.exists(),
        "the killed export's partial is still there"
    );
    for d in &lookalikes {
        assert!(d.join("keep.txt").exists(), "{} was touched", d.display());
    }
    let mut left = lookalikes.to_vec();
    left.sort();
    assert_eq!(partials(&parent), left);
}
