//! The HTML report, checked in a real browser: rendered from a synthetic
//! session with consent, gaps of every reason and an export, and from a
//! real capture under Xvfb; opened in headless Chromium, whose DOM must hold
//! every lane, band, gap and export with the store's own counts, whose
//! requests all go to a counting proxy that must see none, and whose
//! screenshot (saved in target/test-artifacts/) must not be blank.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use candor::registry::Kind;
use candor::report::Lane;
use common::chromium::{self, attr, tags, Proxy};
use common::*;

const ALL_SCOPES: &str = "keys.timing,keys.text,mouse,window.apps,window.titles,editor.files,editor.content,shell.commands,editor.actions";

/// Events per lane, counted by SQL from the store.
fn lane_counts(t: &TestStore) -> BTreeMap<&'static str, u64> {
    Lane::ALL
        .iter()
        .map(|l| {
            let codes: Vec<String> = l.kinds().iter().map(|k| k.code().to_string()).collect();
            let sql = format!(
                "SELECT count(*) FROM events WHERE kind IN ({})",
                codes.join(",")
            );
            (l.name(), count(t, &sql) as u64)
        })
        .collect()
}

/// Lane totals as the browser's DOM has them: summed over the day figures,
/// and from the lanes table.
fn dom_lanes(dom: &str) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut drawn = BTreeMap::new();
    for g in tags(dom, r#"<g class="lane""#) {
        let lane = attr(g, "data-lane").unwrap().to_owned();
        let n: u64 = attr(g, "data-events").unwrap().parse().unwrap();
        *drawn.entry(lane).or_default() += n;
    }
    let mut table = BTreeMap::new();
    let start = dom.find(r#"<table id="lanes-table""#).expect("lanes table");
    let end = start + dom[start..].find("</table>").unwrap();
    for row in dom[start..end].split(r#"<tr data-lane=""#).skip(1) {
        let lane = row.split('"').next().unwrap().to_owned();
        let at = row.find(r#"data-events=""#).unwrap() + 13;
        let n: u64 = row[at..].split('"').next().unwrap().parse().unwrap();
        table.insert(lane, n);
    }
    (drawn, table)
}

/// Gap marks in the DOM: per reason, (spans, events not captured).
fn dom_gaps(dom: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in tags(dom, r#"<rect class="gap""#) {
        let slot = out
            .entry(attr(r, "data-reason").unwrap().to_owned())
            .or_default();
        slot.0 += attr(r, "data-spans").unwrap().parse::<u64>().unwrap();
        slot.1 += attr(r, "data-count").unwrap().parse::<u64>().unwrap();
    }
    out
}

fn store_gaps(t: &TestStore) -> BTreeMap<String, (u64, u64)> {
    let store = t.open();
    let mut stmt = store
        .conn()
        .prepare("SELECT reason, count(*), sum(count) FROM gaps GROUP BY reason")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn ledger(t: &TestStore) -> Vec<serde_json::Value> {
    t.candor_ok(&["consent", "log", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Checks that the HTML cannot reach anything by itself: a CSP that allows
/// nothing by default, and no URL, source or link out of the page.
fn assert_self_contained(html: &str) {
    assert!(
        html.contains(r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none';"#),
        "no CSP"
    );
    for bad in [
        "http://", "https://", "//fonts", " src=", "@import", "<link", "<iframe", "<object",
        "<embed",
    ] {
        assert!(!html.contains(bad), "the report holds {bad:?}");
    }
    for (i, _) in html.match_indices("url(") {
        assert!(
            html[i..].starts_with("url(#"),
            "url() to outside: {}",
            &html[i..i + 40]
        );
    }
    for (i, _) in html.match_indices("href=\"") {
        assert!(
            html[i + 6..].starts_with('#'),
            "a link out: {}",
            &html[i..i + 40]
        );
    }
}

fn report(t: &TestStore, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    t.candor_ok(&args);
    assert_eq!(mode(out), 0o600, "the report is readable by others");
    std::fs::read_to_string(out).unwrap()
}

/// The checks both tests make in the browser.
fn check_in_browser(chrome: &Path, t: &TestStore, page: &Path, shot_name: &str) -> String {
    let proxy = Proxy::start();
    let dom = chromium::dump_dom(chrome, page, &proxy);
    // The page's own script ran under its CSP (the zoom status is filled).
    assert!(
        dom.contains(r#"aria-live="polite">Showing every day, the "#),
        "the zoom script did not run"
    );
    let want = lane_counts(t);
    let (drawn, table) = dom_lanes(&dom);
    for (lane, n) in &want {
        assert_eq!(
            drawn.get(*lane).copied().unwrap_or(u64::MAX),
            *n,
            "lane {lane} drawn: {drawn:?}"
        );
        assert_eq!(
            table.get(*lane).copied(),
            Some(*n),
            "lane {lane} in the table"
        );
    }
    assert_eq!(drawn.len(), Lane::ALL.len(), "{drawn:?}");
    assert_eq!(dom_gaps(&dom), store_gaps(t), "gap marks");
    let png = chromium::artifact_dir().join(shot_name);
    chromium::screenshot(chrome, page, &png, &proxy);
    let (w, h, variance, dark) = chromium::png_stats(&png);
    assert!(w >= 1000 && h >= 1000, "screenshot {w}x{h}");
    assert!(
        variance > 500.0 && dark > 0.03,
        "the screenshot looks blank: variance {variance:.0}, dark share {dark:.3} ({})",
        png.display()
    );
    assert_eq!(
        proxy.hits(),
        0,
        "the page made requests: {:?}",
        proxy.seen()
    );
    dom
}

#[test]
fn a_synthetic_session_with_consent_gaps_and_an_export_in_chromium() {
    let Some(chrome) = chromium::find() else {
        return;
    };
    let t = TestStore::new();
    grant(&t, ALL_SCOPES);
    write_synthetic(&t, 30_000);
    // Captured under the consent: a few events, one with a marker text.
    let t0 = now_ns();
    capture(
        &t,
        vec![
            // Two hours on: typed text is kept up to a limit per hour, and
            // the synthetic typing must not fill the canary's hour.
            key_down(t0 + 2 * 3_600 * 1_000_000_000, "ZEBRACANARY"),
            mouse_move(t0 + 2_000_000, 10, 20),
            file_modify(t0 + 3_000_000, "src/lib.rs", b"fn main() {}\n"),
        ],
    );
    // Gaps of every reason, two of them close enough to share a mark.
    {
        let store = t.open();
        let base = t0 - 30 * 60 * 1_000_000_000;
        for (i, reason) in ["dropped", "paused", "excluded", "crashed", "rate-limited"]
            .iter()
            .enumerate()
        {
            let s = base + i as i64 * 120 * 1_000_000_000;
            for (j, n) in [(0i64, 3i64), (1, 4)] {
                store
                    .conn()
                    .execute(
                        "INSERT INTO gaps(start_ns, end_ns, reason, count, lost_kind) VALUES (?1, ?2, ?3, ?4, 'key.down')",
                        rusqlite::params![s + j * 2_000_000_000, s + j * 2_000_000_000 + 1_000_000_000, reason, n],
                    )
                    .unwrap();
            }
        }
        // And one a long way off, on its own.
        store
            .conn()
            .execute(
                "INSERT INTO gaps(start_ns, end_ns, reason, count) VALUES (?1, ?2, 'dropped', 11)",
                rusqlite::params![t0 - 10 * 60 * 1_000_000_000, t0 - 9 * 60 * 1_000_000_000],
            )
            .unwrap();
    }
    let exports = t.tmp.path().join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    let out = t.run(
        "candor-export",
        &[
            "episodes",
            "--synthetic",
            "--quiet",
            "--format",
            "jsonl",
            "--out",
            exports.join("w1").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(exports.join("w1/manifest.json")).unwrap()).unwrap();

    let page = t.tmp.path().join("report.html");
    let html = report(&t, &page, &["--exports-dir", exports.to_str().unwrap()]);
    assert_self_contained(&html);
    assert!(
        !html.contains("ZEBRACANARY"),
        "typed text without --content"
    );
    assert!(html.len() < 5_000_000);
    let dom = check_in_browser(&chrome, &t, &page, "report-synthetic.png");

    // Every lane is there, on every day drawn.
    let days = tags(&dom, r#"<figure class="day""#).len();
    assert!(days >= 1);
    assert_eq!(
        tags(&dom, r#"<g class="lane""#).len(),
        days * Lane::ALL.len()
    );
    // The consent window: a band with its scopes, and its counts.
    let entries = ledger(&t);
    let record = entries[0]["data"]["record"]["record_id"].as_str().unwrap();
    let bands = tags(&dom, r#"<rect class="band""#);
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.split(',').map(str::to_owned).collect();
        v.sort();
        v
    };
    assert!(
        bands.iter().any(|b| attr(b, "data-record") == Some(record)
            && attr(b, "data-scopes").map(sorted)
                == Some(sorted(&format!("capture.meta,{ALL_SCOPES}")))),
        "{bands:?}"
    );
    let captured = count(&t, "SELECT count(*) FROM events e JOIN sessions s ON s.id = e.session_id WHERE s.synthetic = 0");
    assert_eq!(captured, 3);
    let rows = tags(&dom, r#"<tr class="window""#);
    assert_eq!(rows.len(), 1);
    assert_eq!(attr(rows[0], "data-events"), Some("3"));
    // Two gaps a second apart share a mark; the lone one has its own.
    let marks = tags(&dom, r#"<rect class="gap""#);
    assert_eq!(marks.len(), 6, "{marks:?}");
    // The export: a marker with its id, and its manifest's figures.
    let export = entries
        .iter()
        .find(|e| e["action"] == "export")
        .expect("export entry");
    let id = export["data"]["export_id"].as_str().unwrap();
    assert!(tags(&dom, r#"<line class="export""#)
        .iter()
        .any(|l| attr(l, "data-export-id") == Some(id)));
    let row = tags(&dom, r#"<tr data-export-id=""#);
    assert_eq!(row.len(), 1);
    let start = dom.find(row[0]).unwrap();
    let row_html = &dom[start..start + dom[start..].find("</tr>").unwrap()];
    assert!(
        row_html.contains(&format!(
            r#"data-events="{}""#,
            manifest["counts"]["events_exported"].as_u64().unwrap()
        )),
        "{row_html}"
    );
    assert!(
        row_html.contains("manifest matches the ledger"),
        "{row_html}"
    );
    // The ledger table: every entry, with its hash's prefix.
    assert_eq!(tags(&dom, r#"<tr data-seq=""#).len(), entries.len());
    assert!(dom.contains(r#"id="chain" data-intact="true" data-anchor="true""#));

    // With --content, the typed text is there, unsealed.
    let page2 = t.tmp.path().join("content.html");
    let html = report(&t, &page2, &["--content"]);
    assert!(html.contains("ZEBRACANARY"));

    // audit --html: the same report, with the verdict.
    let page3 = t.tmp.path().join("audit.html");
    t.candor_ok(&["audit", "--html", page3.to_str().unwrap()]);
    assert_eq!(mode(&page3), 0o600);
    let proxy = Proxy::start();
    let dom = chromium::dump_dom(&chrome, &page3, &proxy);
    assert!(dom.contains(r#"<section id="audit" data-verdict="PASS""#));
    assert_eq!(dom_gaps(&dom), store_gaps(&t));
    assert_eq!(proxy.hits(), 0);
}

#[test]
fn the_request_detector_works_and_the_csp_blocks_what_is_injected() {
    let Some(chrome) = chromium::find() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Without a CSP, an image is fetched: the proxy sees it.
    let open = tmp.path().join("open.html");
    std::fs::write(
        &open,
        r#"<!DOCTYPE html><html><body><img src="http://canary.invalid/x.png"></body></html>"#,
    )
    .unwrap();
    let proxy = Proxy::start();
    chromium::dump_dom(&chrome, &open, &proxy);
    assert!(
        proxy.hits() > 0,
        "the proxy saw no request: the check below would prove nothing"
    );
    // The report's CSP blocks the same image, injected into a real report.
    let t = TestStore::new();
    write_synthetic(&t, 2_000);
    let page = t.tmp.path().join("report.html");
    let html = report(&t, &page, &[]);
    let injected = html.replace("<main>", r#"<main><img src="http://canary.invalid/x.png">"#);
    std::fs::write(&page, injected).unwrap();
    let proxy = Proxy::start();
    chromium::dump_dom(&chrome, &page, &proxy);
    assert_eq!(
        proxy.hits(),
        0,
        "the CSP let a request out: {:?}",
        proxy.seen()
    );
}

#[test]
fn a_real_capture_under_xvfb_in_chromium() {
    use common::x11::{daemon, stop, X};
    let Some(chrome) = chromium::find() else {
        return;
    };
    let Some(x) = X::start(true) else { return };
    let t = TestStore::new();
    grant(&t, "keys.timing,keys.text,mouse,window.apps");
    let (d, _) = daemon(&t, &x);
    let editor = x.window("Code", "main.rs - project");
    x.xdotool(&["type", "--delay", "30", "hello"]);
    x.xdotool(&["mousemove", "100", "120", "click", "1"]);
    t.candor_ok(&["pause", "--reason", "a call"]);
    x.xdotool(&["type", "--delay", "30", "hidden"]);
    t.candor_ok(&["resume"]);
    {
        let _vault = x.window("KeePassXC", "Passwords.kdbx");
        x.xdotool(&["type", "--delay", "30", "hunter2"]);
    }
    std::thread::sleep(Duration::from_millis(600));
    x.xdotool(&["type", "--delay", "30", "ok"]);
    drop(editor);
    stop(d);
    assert!(
        count(
            &t,
            &format!(
                "SELECT count(*) FROM events WHERE kind = {}",
                Kind::KeyDown.code()
            )
        ) >= 7
    );
    let gaps = store_gaps(&t);
    assert!(
        gaps.contains_key("paused") && gaps.contains_key("excluded"),
        "{gaps:?}"
    );

    let page = t.tmp.path().join("report.html");
    let html = report(&t, &page, &[]);
    assert_self_contained(&html);
    let dom = check_in_browser(&chrome, &t, &page, "report-xvfb.png");
    let record = ledger(&t)[0]["data"]["record"]["record_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(tags(&dom, r#"<rect class="band""#)
        .iter()
        .any(|b| attr(b, "data-record") == Some(record.as_str())));
    // Focus by app class: the editor is named in the focus lane.
    assert!(tags(&dom, r#"<rect class="focus-run""#)
        .iter()
        .any(|r| attr(r, "data-app") == Some("Code")));
    assert!(
        !dom.contains("KeePassXC"),
        "the excluded app is named in the report"
    );
    // The window's counts are the store's.
    let rows = tags(&dom, r#"<tr class="window""#);
    assert_eq!(rows.len(), 1);
    let events = count(&t, "SELECT count(*) FROM events");
    assert_eq!(
        attr(rows[0], "data-events"),
        Some(events.to_string().as_str())
    );
}
