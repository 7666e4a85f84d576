//! The consent screen, driven for real: the `candor consent` binary in an
//! 80×24 tmux pane, keys sent with `send-keys`, the screen read with
//! `capture-pane`, and the ledger checked afterwards.

mod common;

use common::tmux::Pane;
use common::*;

/// The `candor consent` binary in an 80×24 pane of a private tmux server.
fn consent_pane(t: &TestStore, name: &str) -> Option<Pane> {
    let cmd = format!(
        "env CANDOR_CONFIG_DIR='{}' CANDOR_KEY_STORE=file TERM=xterm-256color '{}' --data-dir '{}' consent; echo EXIT=$?; sleep 600",
        t.paths.config_dir.display(),
        bin_path("candor").display(),
        t.paths.data_dir.display()
    );
    Pane::start(name, &cmd, 80, 24)
}

fn ledger(t: &TestStore) -> Vec<serde_json::Value> {
    t.candor_ok(&["consent", "log", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn accepting_after_reading_the_notice_records_a_screen_consent() {
    let t = TestStore::new();
    let Some(p) = consent_pane(&t, "accept") else {
        return;
    };
    let s = p.wait_for("Step 1 of 3: read the notice");
    assert!(s.contains("Scroll to the end to continue"), "{s}");
    // Enter before the end does not continue.
    p.keys(&["Enter"]);
    let s = p.wait_for("Please read the notice to the end first");
    assert!(s.contains("Step 1 of 3"), "{s}");
    // Page down to the end, as a reader would.
    for _ in 0..60 {
        if p.screen().contains("End of notice reached") {
            break;
        }
        p.keys(&["PageDown"]);
    }
    p.wait_for("End of notice reached");
    p.keys(&["Enter"]);
    let s = p.wait_for("Step 2 of 3: choose what to share");
    assert!(!s.contains("[x]"), "scopes must start off:\n{s}");
    assert!(
        s.contains("keys.timing") && s.contains("editor.content"),
        "{s}"
    );
    // keys.timing on; move to mouse and turn it on.
    p.keys(&["Space", "Down", "Down", "Space"]);
    let s = p.wait_for("sensitivity: interaction");
    assert!(s.contains("kept up to 90 days"), "{s}");
    // The last scope is reachable in 24 rows, and its row stays in view.
    p.keys(&["Down", "Down", "Down", "Down", "Down", "Down", "Space"]);
    let s = p.wait_for("> [x]    shell.commands");
    assert!(
        s.contains("shell.commands · sensitivity: highly-sensitive"),
        "{s}"
    );
    // Raw typing rhythm is listed last, off, with its warning in plain
    // words; it is left off here.
    p.keys(&["Down"]);
    let s = p.wait_for("> [ ]    keys.rhythm");
    assert!(
        s.contains("Your typing rhythm can identify you") && s.contains("Needs keys.timing"),
        "{s}"
    );
    p.keys(&["Up"]);
    p.wait_for("> [x]    shell.commands");
    p.keys(&["Enter"]);
    let s = p.wait_for("Step 3 of 3: confirm");
    assert!(
        s.contains("keys.timing")
            && s.contains("mouse")
            && s.contains("shell.commands")
            && !s.contains("keys.text"),
        "{s}"
    );
    p.type_text("I agree");
    p.keys(&["Enter"]);
    let s = p.wait_for("EXIT=");
    assert!(
        s.contains("EXIT=0") && s.contains("recorded for capture.meta"),
        "{s}"
    );

    let entries = ledger(&t);
    assert_eq!(entries.len(), 1);
    let r = &entries[0]["data"]["record"];
    assert_eq!(entries[0]["action"], "grant");
    assert_eq!(r["method"], "screen");
    assert_eq!(
        r["scopes"],
        serde_json::json!(["capture.meta", "keys.timing", "mouse", "shell.commands"])
    );
    assert_eq!(r["notice_sha256"], notice_sha256());
}

#[test]
fn escape_or_q_cancels_and_records_nothing() {
    for (name, keys) in [
        ("esc", &["Escape"][..]),
        ("q", &["End", "Enter", "Space", "q"][..]),
    ] {
        let t = TestStore::new();
        let Some(p) = consent_pane(&t, name) else {
            return;
        };
        p.wait_for("Step 1 of 3");
        p.keys(keys);
        let s = p.wait_for("EXIT=");
        assert!(s.contains("cancelled: nothing was recorded"), "{s}");
        assert!(
            ledger(&t).is_empty(),
            "cancelling with {name} recorded something"
        );
    }
}

#[test]
fn run_again_it_amends_the_consent_in_force() {
    let t = TestStore::new();
    grant(&t, "mouse");
    let Some(p) = consent_pane(&t, "amend") else {
        return;
    };
    let s = p.wait_for("Your consent");
    assert!(s.contains("You consented on") && s.contains("mouse"), "{s}");
    p.keys(&["a"]);
    let s = p.wait_for("Step 2 of 3");
    assert!(
        s.contains("[x]    mouse"),
        "the current scopes are not shown:\n{s}"
    );
    // Add window.apps (the fourth scope), drop mouse (the third).
    p.keys(&["Down", "Down", "Down", "Space", "Up", "Space", "Enter"]);
    let s = p.wait_for("Step 3 of 3");
    assert!(s.contains("window.apps") && !s.contains("• mouse"), "{s}");
    p.type_text("I agree");
    p.keys(&["Enter"]);
    let s = p.wait_for("EXIT=");
    assert!(s.contains("amended"), "{s}");
    let entries = ledger(&t);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["action"], "amend");
    let r = &entries[1]["data"]["record"];
    assert_eq!(r["method"], "screen");
    assert_eq!(
        r["scopes"],
        serde_json::json!(["capture.meta", "window.apps"])
    );
    assert_eq!(r["replaces"], entries[0]["data"]["record"]["record_id"]);
}

#[test]
fn run_again_it_can_revoke() {
    let t = TestStore::new();
    grant(&t, "mouse");
    let Some(p) = consent_pane(&t, "revoke") else {
        return;
    };
    p.wait_for("Your consent");
    p.keys(&["r"]);
    p.wait_for("Withdraw your consent?");
    p.keys(&["y"]);
    let s = p.wait_for("EXIT=");
    assert!(s.contains("consent revoked"), "{s}");
    let entries = ledger(&t);
    assert_eq!(entries.last().unwrap()["action"], "revoke");
}

#[test]
fn without_a_terminal_it_points_to_the_scripted_grant() {
    let t = TestStore::new();
    let out = t.candor(&["consent"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("needs a terminal"),
        "{}",
        stderr(&out)
    );
}
