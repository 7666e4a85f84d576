//! Headless Chromium for the report tests: the DOM after the page's own
//! script ran (`--dump-dom`), a screenshot, and a proxy that counts every
//! connection the browser tries, so a page that reaches out is caught.
//! Skips (or fails under CI) when Chromium is missing.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The browser's path, or `None` after a skip message.
pub fn find() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.status.success() && !p.is_empty() {
                return Some(PathBuf::from(p));
            }
        }
    }
    super::skip_or_fail("chromium is not installed (scripts/setup.sh installs it)");
    None
}

/// Calls Chromium makes for itself whatever page it shows (network time,
/// component updates, account sign-in), which no flag turns off entirely.
/// Exact hosts and paths: a page's font or script from any Google host
/// (fonts.googleapis.com, www.gstatic.com) is still counted.
const BROWSER_OWN: &[&str] = &[
    "http://clients2.google.com/time/1/current?",
    "CONNECT update.googleapis.com:443 ",
    "http://update.googleapis.com/service/update2/",
    "CONNECT accounts.google.com:443 ",
];

/// A local proxy every request of the browser goes to; it counts the
/// connections and answers none of them.
pub struct Proxy {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, s) = (hits.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 512];
                let n = conn.read(&mut buf).unwrap_or(0);
                let first = String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                s.lock().unwrap().push(first);
            }
        });
        Proxy { port, hits, seen }
    }

    /// Every connection, the browser's own service calls included.
    pub fn connections(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Requests that are not the browser's own service calls: what a page
    /// asked for. A short wait lets a last connection's line arrive.
    pub fn seen(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !BROWSER_OWN.iter().any(|b| l.contains(b)))
            .cloned()
            .collect()
    }

    pub fn hits(&self) -> usize {
        self.seen().len()
    }
}

fn base_cmd(chrome: &Path, profile: &Path, proxy: &Proxy) -> Command {
    let mut cmd = Command::new(chrome);
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--metrics-recording-only",
        "--hide-scrollbars",
        "--virtual-time-budget=3000",
        // Every request, loopback included, goes to the counting proxy.
        "--proxy-bypass-list=<-loopback>",
    ])
    .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
    .arg(format!("--user-data-dir={}", profile.display()));
    // Chromium's sandbox refuses to run as root (as CI does).
    if super::is_root() {
        cmd.arg("--no-sandbox");
    }
    cmd
}

/// The DOM of `page` once its scripts ran.
pub fn dump_dom(chrome: &Path, page: &Path, proxy: &Proxy) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = base_cmd(chrome, profile.path(), proxy)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 DOM")
}

/// A screenshot of `page` into `png`.
pub fn screenshot(chrome: &Path, page: &Path, png: &Path, proxy: &Proxy) {
    let profile = tempfile::tempdir().expect("profile dir");
    let _ = std::fs::remove_file(png);
    let out = base_cmd(chrome, profile.path(), proxy)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,1600")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && png.exists(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where tests leave files for people to look at.
pub fn artifact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// The PNG's size, and the variance of its pixels' grey levels and the
/// share of pixels that are not near-white: a blank or one-colour page
/// has (almost) neither.
pub fn png_stats(path: &Path) -> (u32, u32, f64, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("open png"));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let (mut sum, mut sq, mut dark, mut n) = (0f64, 0f64, 0u64, 0u64);
    for p in px.chunks(channels) {
        let grey = if channels >= 3 {
            0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
        } else {
            f64::from(p[0])
        };
        sum += grey;
        sq += grey * grey;
        dark += u64::from(grey < 200.0);
        n += 1;
    }
    let mean = sum / n as f64;
    (
        info.width,
        info.height,
        sq / n as f64 - mean * mean,
        dark as f64 / n as f64,
    )
}

/// Every value of `attr` on elements whose opening tag starts with
/// `tag_start` (e.g. `<g class="lane"`), in document order, with the rest
/// of that tag.
pub fn tags<'a>(dom: &'a str, tag_start: &str) -> Vec<&'a str> {
    dom.match_indices(tag_start)
        .map(|(i, _)| {
            let end = dom[i..].find('>').map_or(dom.len(), |e| i + e);
            &dom[i..end]
        })
        .collect()
}

/// The value of `attr` in one tag.
pub fn attr<'a>(tag: &'a str, attr: &str) -> Option<&'a str> {
    let key = format!(" {attr}=\"");
    let at = tag.find(&key)? + key.len();
    tag[at..].split('"').next()
}
