//! The ingest socket against a real daemon: malformed messages each get an
//! error naming the problem while the connection and the daemon stay up;
//! consent, pauses and the watched workspaces decide what is recorded, and
//! clients are told why not; the rate limit's refusals become a gap; open
//! shell commands survive a disconnect; the socket is private.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

struct Conn {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Conn {
    fn open(t: &TestStore) -> Conn {
        let s = UnixStream::connect(t.paths.data_dir.join("ingest.sock")).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> Value {
        self.w.write_all(bytes).unwrap();
        self.w.write_all(b"\n").unwrap();
        self.reply()
    }

    fn reply(&mut self) -> Value {
        let mut line = String::new();
        let n = self.r.read_line(&mut line).expect("a reply");
        assert!(n > 0, "the daemon closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    fn send(&mut self, msg: &Value) -> Value {
        self.raw(msg.to_string().as_bytes())
    }
}

fn now_ms() -> i64 {
    now_ns() / 1_000_000
}

fn setup(t: &TestStore, scopes: &str, config: &str) -> (std::path::PathBuf, Child) {
    let ws = t.tmp.path().join("proj");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join(".gitignore"), "build/\n").unwrap();
    std::fs::create_dir_all(&t.paths.config_dir).unwrap();
    std::fs::write(t.paths.config_dir.join("config.toml"), config).unwrap();
    grant(t, scopes);
    t.candor_ok(&["watch", "add", ws.to_str().unwrap()]);
    let (d, lines) = start_daemon(t, None, &[]);
    assert!(
        lines.iter().any(|l| l.ends_with("ingest: running")),
        "{lines:?}"
    );
    (ws.canonicalize().unwrap(), d)
}

fn stop(t: &TestStore, mut d: Child) {
    t.candor_ok(&["stop"]);
    assert!(exited(&mut d).success());
}

fn events(t: &TestStore) -> Vec<Value> {
    let out = t.candor_ok(&["events", "--json", "--last", "500"]);
    let v: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    v
}

fn status(t: &TestStore) -> Value {
    serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap()
}

fn err_of(v: &Value) -> String {
    assert_eq!(v["ok"], false, "{v}");
    v["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn malformed_messages_get_errors_and_the_daemon_stays_up() {
    let t = TestStore::new();
    let (ws, d) = setup(&t, "editor.files,editor.content,editor.actions", "");
    let file = ws.join("src/lib.rs");
    let f = file.to_str().unwrap();
    let ts = now_ms();
    let mut c = Conn::open(&t);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"garbage".to_vec(), "not JSON"),
        (b"{\"v\":1,".to_vec(), "not JSON"),
        (b"[1,2,3]".to_vec(), "JSON object"),
        (b"\xff\xfe\x00junk".to_vec(), "UTF-8"),
        (json!({"kind":"editor.focus","ts":ts}).to_string().into_bytes(), "`v` is missing"),
        (json!({"v":7,"kind":"editor.focus","ts":ts}).to_string().into_bytes(), "version 7"),
        (json!({"v":1,"kind":"editor.teleport","ts":ts}).to_string().into_bytes(), "unknown kind `editor.teleport`"),
        (json!({"v":1,"kind":"key.down","ts":ts,"class":"letter","mods":0}).to_string().into_bytes(), "cannot be sent"),
        (json!({"v":1,"kind":"capture.gap","ts":ts}).to_string().into_bytes(), "cannot be sent"),
        (json!({"v":1,"kind":"editor.focus"}).to_string().into_bytes(), "`ts` is missing"),
        (json!({"v":1,"kind":"editor.focus","ts":1}).to_string().into_bytes(), "away from the daemon's clock"),
        (json!({"v":1,"kind":"editor.focus","ts":ts}).to_string().into_bytes(), "editor.focus.file is required"),
        (json!({"v":1,"kind":"editor.focus","ts":ts,"file":"src/lib.rs"}).to_string().into_bytes(), "absolute"),
        (json!({"v":1,"kind":"editor.focus","ts":ts,"file":f,"path":"x"}).to_string().into_bytes(), "send the absolute `file`"),
        (json!({"v":1,"kind":"editor.focus","ts":ts,"file":f,"colour":"red"}).to_string().into_bytes(), "no field `colour`"),
        (json!({"v":1,"kind":"editor.cursor","ts":ts,"file":f,"line":"7","col":0}).to_string().into_bytes(), "editor.cursor.line must be an integer"),
        (json!({"v":1,"kind":"editor.cursor","ts":ts,"file":f,"line":7.5,"col":0}).to_string().into_bytes(), "editor.cursor.line must be an integer"),
        (json!({"v":1,"kind":"editor.cursor","ts":ts,"file":f,"line":-3,"col":0}).to_string().into_bytes(), "must not be negative"),
        (json!({"v":1,"kind":"editor.edit","ts":ts,"file":f,"offset":0,"deleted":0,"text":42}).to_string().into_bytes(), "editor.edit.text must be a string"),
        (json!({"v":1,"kind":"editor.edit","ts":ts,"file":f,"offset":0,"text":"x"}).to_string().into_bytes(), "editor.edit.deleted is required"),
        (json!({"v":1,"kind":"editor.command","ts":ts,"command":"s/a/b/ now"}).to_string().into_bytes(), "without arguments"),
        (json!({"v":1,"kind":"run.test","ts":ts,"cwd":"/","command":"x","exit":0,"duration_ms":1,"runner":"maven"}).to_string().into_bytes(), "one of cargo"),
        (json!({"v":1,"kind":"shell.command","ts":ts,"id":"nope","exit":0}).to_string().into_bytes(), "no open shell.command"),
        (vec![b'x'; 70 * 1024], "longer than 65536 bytes"),
        ({
            let mut big = json!({"v":1,"kind":"editor.edit","ts":ts,"file":f,"offset":0,"deleted":0}).to_string();
            big.pop();
            big.push_str(&format!(",\"text\":\"{}\"}}", "a".repeat(65 * 1024)));
            big.into_bytes()
        }, "longer than 65536 bytes"),
    ];
    let mut invalid = 0;
    for (line, want) in &cases {
        let reply = c.raw(line);
        let e = err_of(&reply);
        // shell.command needs shell.commands: not granted, so refused as
        // not recorded before the unknown id is looked at.
        if want.contains("no open shell.command") {
            assert_eq!(reply["not_recorded"], "not-granted", "{reply}");
            continue;
        }
        assert!(
            e.contains(want),
            "{}: {e} (wanted {want})",
            String::from_utf8_lossy(&line[..line.len().min(80)])
        );
        assert!(reply.get("not_recorded").is_none(), "{reply}");
        invalid += 1;
    }
    // Blank lines are skipped without a reply; the connection still works.
    c.w.write_all(b"\n\n").unwrap();
    let ok = c.send(&json!({"v":1,"kind":"editor.focus","ts":now_ms(),"file":f,"editor":"test"}));
    assert_eq!(ok, json!({"ok": true}));
    // A second client is served too, and the daemon is up.
    let mut c2 = Conn::open(&t);
    let ok =
        c2.send(&json!({"v":1,"kind":"editor.cursor","ts":now_ms(),"file":f,"line":3,"col":4}));
    assert_eq!(ok["ok"], true, "{ok}");
    let s = status(&t);
    assert_eq!(s["ingest"]["invalid"], invalid, "{s}");
    assert_eq!(s["ingest"]["recorded"], 2, "{s}");
    drop(c);
    drop(c2);
    stop(&t, d);
    let kinds: Vec<String> = events(&t)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["editor.focus", "editor.cursor"]);
}

#[test]
fn consent_pauses_and_workspaces_decide_and_clients_are_told_why() {
    let t = TestStore::new();
    let (ws, d) = setup(&t, "editor.files", "");
    let f = |rel: &str| ws.join(rel).to_string_lossy().into_owned();
    let focus = |file: String| json!({"v":1,"kind":"editor.focus","ts":now_ms(),"file":file});
    // Links are judged by their targets.
    std::os::unix::fs::symlink("/etc/hostname", ws.join("src/host.txt")).unwrap();
    std::fs::write(ws.join(".env"), "TOKEN=x\n").unwrap();
    std::os::unix::fs::symlink(ws.join(".env"), ws.join("src/settings.txt")).unwrap();
    let away = t.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&away).unwrap();
    std::os::unix::fs::symlink(&away, ws.join("src/away")).unwrap();
    let mut c = Conn::open(&t);
    assert_eq!(c.send(&focus(f("src/main.rs")))["ok"], true);
    let cases = [
        (focus(f("src/host.txt")), "outside", "outside the watched"),
        (focus(f("src/settings.txt")), "denied", "deny list"),
        (
            focus(f("src/away/new/dir/a.txt")),
            "outside",
            "outside the watched",
        ),
        (focus(f(".env")), "denied", "deny list"),
        (focus(f("build/out.rs")), "ignored", "git ignores"),
        (focus("/etc/hosts".into()), "outside", "outside the watched"),
        (
            json!({"v":1,"kind":"editor.edit","ts":now_ms(),"file":f("src/main.rs"),"offset":0,"deleted":0,"text":"x"}),
            "not-granted",
            "does not grant editor.content",
        ),
        (
            json!({"v":1,"kind":"shell.command","ts":now_ms(),"command":"ls","cwd":f("src"),"exit":0}),
            "not-granted",
            "does not grant shell.commands",
        ),
    ];
    for (msg, reason, words) in &cases {
        let r = c.send(msg);
        assert_eq!(r["not_recorded"], *reason, "{msg}: {r}");
        let e = err_of(&r);
        assert!(e.starts_with("not recorded: ") && e.contains(words), "{e}");
    }
    t.candor_ok(&["pause"]);
    let r = c.send(&focus(f("src/main.rs")));
    assert_eq!(r["not_recorded"], "paused", "{r}");
    assert_eq!(err_of(&r), "not recorded: capture is paused");
    t.candor_ok(&["resume"]);
    assert_eq!(c.send(&focus(f("src/lib.rs")))["ok"], true);
    assert_eq!(status(&t)["ingest"]["not_recorded"], 9);
    drop(c);
    stop(&t, d);
    let paths: Vec<String> = events(&t)
        .iter()
        .filter(|e| e["kind"] == "editor.focus")
        .map(|e| e["fields"]["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["src/main.rs", "src/lib.rs"]);
    assert!(t.candor(&["audit"]).status.success());
}

#[test]
fn rate_limited_messages_are_refused_and_recorded_as_a_gap() {
    let t = TestStore::new();
    let (ws, d) = setup(
        &t,
        "editor.files,editor.actions",
        "[ingest]\nrate = 1\nburst = 10\n",
    );
    let file = ws.join("src/lib.rs").to_string_lossy().into_owned();
    let mut c = Conn::open(&t);
    let (mut ok, mut limited) = (0usize, 0i64);
    for i in 0..60 {
        let r = c.send(
            &json!({"v":1,"kind":"editor.cursor","ts":now_ms(),"file":file,"line":i,"col":0}),
        );
        if r["ok"] == true {
            ok += 1;
        } else {
            assert_eq!(r["not_recorded"], "rate-limited", "{r}");
            assert!(err_of(&r).contains("counted as a gap"));
            limited += 1;
        }
    }
    assert!((10..=13).contains(&ok), "{ok} accepted");
    assert_eq!(ok as i64 + limited, 60);
    // Reconnecting does not refill the bucket: it belongs to the process.
    drop(c);
    let mut c = Conn::open(&t);
    let r =
        c.send(&json!({"v":1,"kind":"editor.cursor","ts":now_ms(),"file":file,"line":99,"col":0}));
    assert_eq!(r["not_recorded"], "rate-limited", "{r}");
    limited += 1;
    assert_eq!(status(&t)["ingest"]["rate_limited"], limited);
    drop(c);
    stop(&t, d);
    let gaps: i64 = count(
        &t,
        "SELECT coalesce(sum(count), 0) FROM gaps WHERE reason = 'rate-limited'",
    );
    assert_eq!(gaps, limited);
    let recorded = events(&t)
        .iter()
        .filter(|e| e["kind"] == "editor.cursor")
        .count();
    assert_eq!(recorded, ok);
}

#[test]
fn a_flood_is_one_gap_row_per_client_per_second_with_exact_counts() {
    let t = TestStore::new();
    let (ws, d) = setup(
        &t,
        "editor.files,editor.actions",
        "[ingest]\nrate = 500\nburst = 1\n",
    );
    let file = ws.join("src/lib.rs").to_string_lossy().into_owned();
    // Two connections of one process: one client, one bucket, one gap.
    let mut conns = [Conn::open(&t), Conn::open(&t)];
    let (mut ok, mut limited) = (0i64, 0i64);
    let started = std::time::Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_millis(2_500) {
        let r = conns[i % 2].send(
            &json!({"v":1,"kind":"editor.cursor","ts":now_ms(),"file":file,"line":i,"col":0}),
        );
        i += 1;
        if r["ok"] == true {
            ok += 1;
        } else {
            assert_eq!(r["not_recorded"], "rate-limited", "{r}");
            limited += 1;
        }
    }
    let secs = started.elapsed().as_secs() as i64 + 1;
    // The flood alternated refusals and admissions many times over: one gap
    // per run of refusals would be hundreds of rows.
    assert!(
        ok > 100 && limited > 100,
        "{ok} accepted, {limited} refused"
    );
    drop(conns);
    stop(&t, d);
    let rows = count(
        &t,
        "SELECT count(*) FROM gaps WHERE reason = 'rate-limited'",
    );
    let counted = count(
        &t,
        "SELECT coalesce(sum(count), 0) FROM gaps WHERE reason = 'rate-limited'",
    );
    eprintln!("flood: {ok} admitted, {limited} refused, {rows} rate-limited gap rows in {secs} s");
    assert_eq!(counted, limited, "gap counts must add up to the refusals");
    assert!(
        (1..=secs + 1).contains(&rows),
        "{rows} gap rows for a {secs}-second flood of {limited} refusals"
    );
    let longest = count(
        &t,
        "SELECT max(end_ns - start_ns) FROM gaps WHERE reason = 'rate-limited'",
    );
    assert!(longest < 1_000_000_000, "a gap spans {longest} ns");
}

#[test]
fn open_shell_commands_are_kept_when_the_client_goes_away() {
    let t = TestStore::new();
    let (ws, d) = setup(&t, "shell.commands", "");
    let sock = t.paths.data_dir.join("ingest.sock");
    assert_eq!(mode(&sock) & 0o777, 0o600);
    let cwd = ws.join("src").to_string_lossy().into_owned();
    let mut c = Conn::open(&t);
    let open = |id: &str, cmd: &str| json!({"v":1,"kind":"shell.command","ts":now_ms(),"id":id,"command":cmd,"cwd":cwd,"shell":"bash"});
    assert_eq!(c.send(&open("s:1", "make check"))["ok"], true);
    let close =
        json!({"v":1,"kind":"shell.command","ts":now_ms(),"id":"s:1","exit":2,"duration_ms":1500});
    assert_eq!(c.send(&close)["ok"], true);
    // A second close of the same id is an error: it was recorded already.
    assert!(err_of(&c.send(&close)).contains("no open shell.command"));
    assert_eq!(c.send(&open("s:2", "vim notes.txt"))["ok"], true);
    drop(c);
    // Outside any workspace, the directory is only `outside`.
    let mut c = Conn::open(&t);
    let r = c.send(&json!({"v":1,"kind":"run.test","ts":now_ms(),"command":"cargo test","cwd":"/tmp","exit":101,"duration_ms":5,"runner":"cargo","passed":3,"failed":1}));
    assert_eq!(r["ok"], true, "{r}");
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    stop(&t, d);
    let ev = events(&t);
    let cmds: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "shell.command").collect();
    assert_eq!(cmds.len(), 2, "{ev:#?}");
    let f0 = &cmds[0]["fields"];
    assert_eq!(
        (
            &f0["command"],
            &f0["exit"],
            &f0["duration_ms"],
            &f0["cwd"],
            &f0["workspace"]
        ),
        (
            &json!("make check"),
            &json!(2),
            &json!(1500),
            &json!("src"),
            &json!("proj")
        )
    );
    let f1 = &cmds[1]["fields"];
    assert_eq!(f1["command"], "vim notes.txt");
    assert!(f1.get("exit").is_none(), "{f1}");
    let run = ev.iter().find(|e| e["kind"] == "run.test").unwrap();
    assert_eq!(run["fields"]["cwd"], "outside");
    assert!(run["fields"].get("workspace").is_none());
    assert_eq!(run["fields"]["failed"], 1);
}

#[test]
fn other_users_are_refused_at_the_ingest_socket() {
    if !is_root() {
        return skip_or_fail("switching to another user needs root");
    }
    let t = TestStore::new();
    let (_ws, d) = setup(&t, "shell.commands", "");
    let out = candor_as_nobody(&t, "ingest.sock", &["run", "--", "true"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("not recorded: refused: not the same user"),
        "{err}"
    );
    stop(&t, d);
    assert!(!events(&t).iter().any(|e| e["kind"] == "run.build"));
}

#[test]
fn a_revocation_records_no_open_command_and_purge_leaves_nothing() {
    let t = TestStore::new();
    let (ws, mut d) = setup(&t, "shell.commands", "");
    let cwd = ws.to_string_lossy().into_owned();
    let mut c = Conn::open(&t);
    let r = c.send(
        &json!({"v":1,"kind":"shell.command","ts":now_ms(),"command":"make","cwd":cwd,"exit":0}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let r = c.send(&json!({"v":1,"kind":"shell.command","ts":now_ms(),"id":"s:9","command":"vim launch-plan.txt","cwd":cwd}));
    assert_eq!(r["ok"], true, "{r}");
    // The connection stays open while consent is withdrawn.
    let out = t.candor_ok(&["consent", "revoke", "--purge"]);
    assert!(out.contains("erased"), "{out}");
    exited(&mut d);
    drop(c);
    assert_eq!(count(&t, "SELECT count(*) FROM events"), 0);
    assert_eq!(count(&t, "SELECT count(*) FROM gaps"), 0);
}
