//! The report's model: everything the HTML shows, aggregated from one
//! streaming pass over the store plus its small tables (gaps, ledger,
//! exports). Events are folded into per-minute counts per lane, per-kind
//! counts per consent window, and a few top lists as they stream by, so the
//! renderer draws from summaries and never from events.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde_json::Value as Json;

use super::ReportError;
use crate::audit::AuditReport;
use crate::consent::ledger;
use crate::consent::state::History;
use crate::event::{Stamp, Value};
use crate::registry::Kind;
use crate::store::{query, scan, writer, Store};

pub const MINUTE_NS: i64 = 60 * 1_000_000_000;
pub const DAY_NS: i64 = 1_440 * MINUTE_NS;
/// Beyond this many days, bins grow from a minute so the file stays small.
pub const MAX_MINUTE_DAYS: i64 = 31;
/// A focus span ends at the next focus change, or this long after it began
/// when none came (the engineer left, or the daemon stopped).
pub const FOCUS_CAP_NS: i64 = 15 * MINUTE_NS;
/// How many rows the top lists keep.
pub const TOP: usize = 20;
/// With --content: the most typed characters kept per hour, and snapshot
/// bytes shown per file.
const TYPED_PER_HOUR: usize = 4_000;
const SNAPSHOT_BYTES: usize = 16 * 1024;
const CUT_MARK: &str = " […more typed this hour, not shown]";
const SNAPSHOT_FILES: usize = 10;

/// What to report on.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    /// Show typed text, titles, snapshots, commit messages and full command
    /// lines, unsealed locally.
    pub content: bool,
    pub now_ns: i64,
    /// Where export directories live, to read each export's manifest.
    pub exports_dir: Option<PathBuf>,
}

/// The timeline's lanes, one per source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    Keys,
    Mouse,
    Focus,
    Files,
    Commits,
    Commands,
    Runs,
    EditorActions,
}

impl Lane {
    pub const ALL: [Lane; 8] = [
        Lane::Keys,
        Lane::Mouse,
        Lane::Focus,
        Lane::Files,
        Lane::Commits,
        Lane::Commands,
        Lane::Runs,
        Lane::EditorActions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Lane::Keys => "keys",
            Lane::Mouse => "mouse",
            Lane::Focus => "focus",
            Lane::Files => "files",
            Lane::Commits => "commits",
            Lane::Commands => "commands",
            Lane::Runs => "runs",
            Lane::EditorActions => "editor-actions",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Lane::Keys => "Keys",
            Lane::Mouse => "Mouse",
            Lane::Focus => "Focus (by app)",
            Lane::Files => "Editor files",
            Lane::Commits => "Commits",
            Lane::Commands => "Shell commands",
            Lane::Runs => "Test and build runs",
            Lane::EditorActions => "Editor actions",
        }
    }

    /// The lane a kind is drawn in; gaps are drawn across all lanes.
    pub fn of(kind: Kind) -> Option<Lane> {
        Some(match kind {
            Kind::KeyDown | Kind::KeyUp => Lane::Keys,
            Kind::MouseMove | Kind::MouseDown | Kind::MouseUp | Kind::MouseWheel => Lane::Mouse,
            Kind::WindowFocus => Lane::Focus,
            Kind::FileCreate
            | Kind::FileModify
            | Kind::FileDelete
            | Kind::FileRename
            | Kind::EditorFocus
            | Kind::EditorEdit => Lane::Files,
            Kind::GitCommit => Lane::Commits,
            Kind::ShellCommand => Lane::Commands,
            Kind::RunTest | Kind::RunBuild => Lane::Runs,
            Kind::EditorCursor
            | Kind::EditorSelection
            | Kind::EditorCommand
            | Kind::EditorDiagnostics => Lane::EditorActions,
            Kind::CaptureGap => return None,
        })
    }

    pub fn kinds(self) -> Vec<Kind> {
        Kind::ALL
            .iter()
            .copied()
            .filter(|k| Lane::of(*k) == Some(self))
            .collect()
    }
}

/// One lane's counts, `bins_per_day` per day of the range.
#[derive(Debug, Clone)]
pub struct LaneData {
    pub lane: Lane,
    pub total: u64,
    pub bins: Vec<u32>,
}

/// A stretch of one app in focus, on the bin grid.
#[derive(Debug, Clone)]
pub struct FocusRun {
    pub start_ns: i64,
    pub end_ns: i64,
    /// Index into `Model::apps`, or `None` for apps beyond the top list.
    pub app: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct AppTime {
    pub app: String,
    pub focus_ns: i64,
    pub switches: u64,
}

/// One consent window and what was recorded under it.
#[derive(Debug, Clone)]
pub struct WindowRow {
    pub record_id: String,
    pub method: &'static str,
    pub scopes: Vec<String>,
    pub from_ns: i64,
    pub until_ns: i64,
    pub end: String,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub by_scope: BTreeMap<&'static str, u64>,
}

/// Gaps of one reason close together, drawn as one mark.
#[derive(Debug, Clone)]
pub struct GapMark {
    pub reason: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub spans: u64,
    pub count: u64,
    pub lost_kinds: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GapTotal {
    pub spans: u64,
    pub count: u64,
    pub total_ns: i64,
}

/// An export, from its ledger entry, with its manifest's figures when the
/// manifest was found and matched the ledger's hash.
#[derive(Debug, Clone)]
pub struct ExportMark {
    pub export_id: String,
    pub ts_ns: i64,
    pub seq: i64,
    pub formats: String,
    pub events: u64,
    pub episodes: u64,
    pub actions: u64,
    pub manifest_sha256: String,
    pub out_name: String,
    pub synthetic: bool,
    pub excluded: Option<BTreeMap<String, u64>>,
    pub manifest_note: String,
}

#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub seq: i64,
    pub ts_ns: i64,
    pub action: String,
    pub scopes: String,
    pub detail: String,
    pub hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct LedgerStatus {
    pub intact: bool,
    pub entries: i64,
    pub head: Option<String>,
    pub anchor_checked: bool,
    pub problem: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CommandRow {
    /// The program, or the whole line with --content.
    pub label: String,
    pub runs: u64,
    pub failed: u64,
}

/// A test command that failed and later passed.
#[derive(Debug, Clone)]
pub struct Fixed {
    pub label: String,
    pub failed_ns: i64,
    pub passed_ns: i64,
    pub failed_tests: Option<i64>,
    pub attempts: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Content {
    /// (hour start, text typed in it).
    pub typed: Vec<(i64, String)>,
    pub titles: Vec<(String, u64)>,
    pub snapshots: Vec<(String, String)>,
    pub messages: Vec<(i64, String)>,
}

/// Everything the report draws.
#[derive(Debug)]
pub struct Model {
    pub generated_ns: i64,
    /// The first day drawn (midnight UTC) and how many.
    pub first_day_ns: i64,
    pub days: usize,
    pub bin_ns: i64,
    pub bins_per_day: usize,
    /// The range asked for (or the store's extent).
    pub from_ns: i64,
    pub to_ns: i64,
    pub lanes: Vec<LaneData>,
    pub apps: Vec<AppTime>,
    pub focus_runs: Vec<FocusRun>,
    pub windows: Vec<WindowRow>,
    pub outside_consent: BTreeMap<&'static str, u64>,
    pub synthetic: BTreeMap<&'static str, u64>,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub unknown_kinds: u64,
    pub gaps: Vec<GapMark>,
    pub gap_totals: BTreeMap<String, GapTotal>,
    pub exports: Vec<ExportMark>,
    pub ledger: Vec<LedgerRow>,
    pub ledger_status: LedgerStatus,
    pub files: Vec<(String, u64)>,
    pub commands: Vec<CommandRow>,
    pub tests_run: u64,
    pub tests_failed: u64,
    pub fixed: Vec<Fixed>,
    pub content: Option<Content>,
    /// Why sealed fields could not be read, if they could not.
    pub sealed_note: Option<String>,
    pub audit: Option<AuditReport>,
}

impl Model {
    pub fn lane(&self, lane: Lane) -> &LaneData {
        &self.lanes[lane as usize]
    }
    pub fn day_start(&self, day: usize) -> i64 {
        self.first_day_ns + day as i64 * DAY_NS
    }
}

/// A sealed event kept for decoding once the scan is over.
struct Held {
    code: i64,
    ts_ns: i64,
    data: Option<Vec<u8>>,
    sealed: Option<Vec<u8>>,
}

impl Held {
    fn of(r: &scan::RawEvent<'_>) -> Held {
        Held {
            code: r.kind,
            ts_ns: r.ts_ns,
            data: r.data.map(<[u8]>::to_vec),
            sealed: r.sealed.map(<[u8]>::to_vec),
        }
    }
}

const CODES: usize = 128;

#[derive(Clone)]
struct Counts {
    events: [u64; CODES],
    sealed: [u64; CODES],
    blobs: [u64; CODES],
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            events: [0; CODES],
            sealed: [0; CODES],
            blobs: [0; CODES],
        }
    }
}

impl Counts {
    fn by_kind(&self) -> BTreeMap<&'static str, u64> {
        Kind::ALL
            .iter()
            .filter(|k| self.events[k.code() as usize] > 0)
            .map(|k| (k.name(), self.events[k.code() as usize]))
            .collect()
    }
    /// Counted as `candor stats` counts scopes: a kind's own scope, plus the
    /// scopes of its sealed fields and snapshot where present.
    fn by_scope(&self) -> BTreeMap<&'static str, u64> {
        let mut out: BTreeMap<&'static str, u64> = BTreeMap::new();
        for k in Kind::ALL {
            let c = k.code() as usize;
            if self.events[c] == 0 {
                continue;
            }
            *out.entry(k.scope().name()).or_default() += self.events[c];
            let (sealed, blob) = k.sealed_scopes();
            for s in sealed {
                if self.sealed[c] > 0 {
                    *out.entry(s.name()).or_default() += self.sealed[c];
                }
            }
            if let (Some(s), true) = (blob, self.blobs[c] > 0) {
                *out.entry(s.name()).or_default() += self.blobs[c];
            }
        }
        out
    }
}

fn str_field(e: &crate::event::Event, name: &str) -> Option<String> {
    match e.get(name) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    }
}

fn int_field(e: &crate::event::Event, name: &str) -> Option<i64> {
    match e.get(name) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

/// The program a command line runs: its first command's first word,
/// without a path (assignments before it are not the program).
fn program(line: &str) -> String {
    crate::shell::lexer::lex(line)
        .first()
        .and_then(|c| c.words.first())
        .map(|w| crate::shell::basename(&w.text).to_owned())
        .unwrap_or_default()
}

/// Builds the model from a store. Reads only.
pub fn build(store: &mut Store, opts: &Options) -> Result<Model, ReportError> {
    let entries = ledger::entries(store.conn())?;
    let has_key = store.meta("key_fingerprint")?.is_some();
    let mut sealed_note = None;
    let key = if has_key {
        match store.sealer(false) {
            Ok(s) => Some(s.ledger_key()),
            Err(e) => {
                sealed_note = Some(format!("sealed fields are not shown: {e}"));
                None
            }
        }
    } else {
        None
    };
    let ledger_status = match ledger::verify(store.conn(), key.as_ref()) {
        Ok(v) => LedgerStatus {
            intact: true,
            entries: v.entries,
            head: Some(v.head),
            anchor_checked: v.anchor_checked,
            problem: None,
        },
        Err(e) => LedgerStatus {
            intact: false,
            entries: entries.len() as i64,
            head: None,
            anchor_checked: false,
            problem: Some(e.to_string()),
        },
    };
    let history = History::from_entries(&entries);
    let synthetic_sessions = store.synthetic_sessions()?;

    // One pass over the events.
    let mut minutes: HashMap<i64, [u32; 8]> = HashMap::new();
    let mut per_window: Vec<Counts> = vec![Counts::default(); history.windows.len()];
    let mut outside = Counts::default();
    let mut synthetic = Counts::default();
    let mut total = Counts::default();
    let mut unknown = 0u64;
    let mut focus: Vec<(i64, Option<String>)> = Vec::new();
    let mut files: HashMap<String, u64> = HashMap::new();
    let mut held: Vec<Held> = Vec::new();
    let mut last_window = 0usize;
    let content = opts.content && sealed_note.is_none();
    let mut latest_blob: HashMap<String, (i64, i64)> = HashMap::new();
    store.scan_events::<ReportError>(opts.since_ns, opts.until_ns, |r| {
        let code = r.kind as usize;
        let Some(kind) = Kind::from_code(r.kind).filter(|_| code < CODES) else {
            unknown += 1;
            return Ok(());
        };
        if let Some(lane) = Lane::of(kind) {
            let slot = minutes.entry(r.ts_ns.div_euclid(MINUTE_NS)).or_default();
            slot[lane as usize] = slot[lane as usize].saturating_add(1);
        }
        let counts = if synthetic_sessions.contains(&r.session_id) {
            &mut synthetic
        } else {
            let w = &history.windows;
            let hit = if w.get(last_window).is_some_and(|x| x.contains(r.ts_ns)) {
                Some(last_window)
            } else {
                w.iter().rposition(|x| x.contains(r.ts_ns))
            };
            match hit {
                Some(i) => {
                    last_window = i;
                    &mut per_window[i]
                }
                None => &mut outside,
            }
        };
        for c in [counts, &mut total] {
            c.events[code] += 1;
            c.sealed[code] += u64::from(r.sealed.is_some());
            c.blobs[code] += u64::from(r.blob_id.is_some());
        }
        match kind {
            Kind::WindowFocus => {
                let e = r.decode_public()?;
                focus.push((r.ts_ns, e.and_then(|e| str_field(&e, "app"))));
                if content && r.sealed.is_some() {
                    held.push(Held::of(r));
                }
            }
            Kind::FileCreate | Kind::FileModify => {
                if let Some(e) = r.decode_public()? {
                    if let (Some(ws), Some(p)) = (str_field(&e, "workspace"), str_field(&e, "path"))
                    {
                        let path = format!("{ws}/{p}");
                        if let Some(b) = r.blob_id {
                            let slot = latest_blob.entry(path.clone()).or_insert((r.ts_ns, b));
                            if r.ts_ns >= slot.0 {
                                *slot = (r.ts_ns, b);
                            }
                        }
                        *files.entry(path).or_default() += 1;
                    }
                }
            }
            Kind::ShellCommand | Kind::RunTest | Kind::RunBuild if sealed_note.is_none() => {
                held.push(Held::of(r))
            }
            Kind::GitCommit | Kind::KeyDown if content && r.sealed.is_some() => {
                held.push(Held::of(r))
            }
            _ => {}
        }
        Ok(())
    })?;

    // The range: what was asked, else the store's extent (events, gaps and
    // the ledger), else today.
    let gaps = store.gaps_overlapping(opts.since_ns, opts.until_ns)?;
    let mut lo = opts.since_ns;
    let mut hi = opts.until_ns;
    let extent_lo = minutes
        .keys()
        .min()
        .map(|m| m * MINUTE_NS)
        .into_iter()
        .chain(gaps.first().map(|g| g.start_ns))
        .chain(entries.first().map(|e| e.ts_ns))
        .min();
    let extent_hi = minutes
        .keys()
        .max()
        .map(|m| (m + 1) * MINUTE_NS)
        .into_iter()
        .chain(gaps.iter().map(|g| g.end_ns).max())
        .chain(entries.last().map(|e| e.ts_ns + 1))
        .max();
    lo = lo.or(extent_lo).or(Some(opts.now_ns));
    hi = hi.or(extent_hi).or(Some(opts.now_ns + 1));
    let (from_ns, to_ns) = (lo.unwrap_or(opts.now_ns), hi.unwrap_or(opts.now_ns + 1));
    let to_ns = to_ns.max(from_ns + 1);
    let first_day_ns = from_ns.div_euclid(DAY_NS) * DAY_NS;
    let days = ((to_ns - 1).div_euclid(DAY_NS) * DAY_NS - first_day_ns) / DAY_NS + 1;
    let days = days.max(1) as usize;
    let bin_minutes = [1i64, 2, 3, 5, 10, 15, 30, 60]
        .into_iter()
        .find(|b| days as i64 * 1_440 / b <= MAX_MINUTE_DAYS * 1_440)
        .unwrap_or(60);
    let bin_ns = bin_minutes * MINUTE_NS;
    let bins_per_day = (1_440 / bin_minutes) as usize;
    let nbins = days * bins_per_day;
    let mut lanes: Vec<LaneData> = Lane::ALL
        .iter()
        .map(|l| LaneData {
            lane: *l,
            total: 0,
            bins: vec![0; nbins],
        })
        .collect();
    for (minute, counts) in &minutes {
        let bin = (minute * MINUTE_NS - first_day_ns).div_euclid(bin_ns);
        if bin < 0 || bin as usize >= nbins {
            continue;
        }
        for (i, n) in counts.iter().enumerate() {
            lanes[i].bins[bin as usize] = lanes[i].bins[bin as usize].saturating_add(*n);
            lanes[i].total += u64::from(*n);
        }
    }
    drop(minutes);

    // Focus: spans from each change to the next, capped.
    focus.sort_by_key(|f| f.0);
    let mut app_time: HashMap<String, (i64, u64)> = HashMap::new();
    let mut spans: Vec<(i64, i64, String)> = Vec::with_capacity(focus.len());
    for (i, (ts, app)) in focus.iter().enumerate() {
        let next = focus.get(i + 1).map_or(to_ns, |n| n.0);
        let end = next.min(ts + FOCUS_CAP_NS).min(to_ns).max(*ts);
        let app = app.clone().unwrap_or_else(|| "(unknown)".to_owned());
        let slot = app_time.entry(app.clone()).or_default();
        slot.0 += end - ts;
        slot.1 += 1;
        spans.push((*ts, end, app));
    }
    let mut apps: Vec<AppTime> = app_time
        .into_iter()
        .map(|(app, (focus_ns, switches))| AppTime {
            app,
            focus_ns,
            switches,
        })
        .collect();
    apps.sort_by(|a, b| b.focus_ns.cmp(&a.focus_ns).then(a.app.cmp(&b.app)));
    let index: HashMap<&str, usize> = apps
        .iter()
        .take(super::html::APP_PATTERNS)
        .enumerate()
        .map(|(i, a)| (a.app.as_str(), i))
        .collect();
    // On the bin grid, each bin shows the app that held focus longest in
    // it. (Sampling the bin's middle lost a focus shorter than a bin that
    // did not cross a middle: a whole short session vanished from the lane.)
    let mut focus_runs: Vec<FocusRun> = Vec::new();
    let mut si = 0usize;
    let mut share: Vec<(&str, i64)> = Vec::new();
    for b in 0..nbins {
        let (bin_start, bin_end) = (
            first_day_ns + b as i64 * bin_ns,
            first_day_ns + (b as i64 + 1) * bin_ns,
        );
        // Spans are sorted and do not overlap, so their ends are sorted too.
        while si < spans.len() && spans[si].1 <= bin_start {
            si += 1;
        }
        share.clear();
        for (s, e, app) in spans[si..].iter().take_while(|sp| sp.0 < bin_end) {
            let overlap = (*e).min(bin_end) - (*s).max(bin_start);
            if overlap <= 0 {
                continue;
            }
            match share.iter_mut().find(|h| h.0 == app.as_str()) {
                Some(h) => h.1 += overlap,
                None => share.push((app.as_str(), overlap)),
            }
        }
        let app = share
            .iter()
            .max_by_key(|h| h.1)
            .map(|h| index.get(h.0).copied());
        let Some(app) = app else { continue };
        let start = first_day_ns + b as i64 * bin_ns;
        let same_day = |r: &FocusRun| r.end_ns == start && start % DAY_NS != 0;
        match focus_runs.last_mut() {
            Some(r) if r.app == app && same_day(r) => r.end_ns = start + bin_ns,
            _ => focus_runs.push(FocusRun {
                start_ns: start,
                end_ns: start + bin_ns,
                app,
            }),
        }
    }
    apps.truncate(TOP.max(super::html::APP_PATTERNS));

    // Gaps: per reason, merged when they touch within a bin and a day.
    let mut gap_totals: BTreeMap<String, GapTotal> = BTreeMap::new();
    let mut marks: Vec<GapMark> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for g in &gaps {
        let t = gap_totals.entry(g.reason.clone()).or_default();
        t.spans += 1;
        t.count += g.count.max(0) as u64;
        t.total_ns += (g.end_ns - g.start_ns).max(0);
        let day = g.start_ns.div_euclid(DAY_NS);
        let merge = open.get(&g.reason).copied().filter(|&i| {
            let m: &GapMark = &marks[i];
            g.start_ns <= m.end_ns + bin_ns && m.start_ns.div_euclid(DAY_NS) == day
        });
        let lost = g.lost_kind.clone();
        match merge {
            Some(i) => {
                let m = &mut marks[i];
                m.end_ns = m.end_ns.max(g.end_ns);
                m.spans += 1;
                m.count += g.count.max(0) as u64;
                if let Some(k) = lost {
                    if !m.lost_kinds.contains(&k) {
                        m.lost_kinds.push(k);
                    }
                }
            }
            None => {
                open.insert(g.reason.clone(), marks.len());
                marks.push(GapMark {
                    reason: g.reason.clone(),
                    start_ns: g.start_ns,
                    end_ns: g.end_ns.max(g.start_ns),
                    spans: 1,
                    count: g.count.max(0) as u64,
                    lost_kinds: lost.into_iter().collect(),
                });
            }
        }
    }

    let windows: Vec<WindowRow> = history
        .windows
        .iter()
        .zip(&per_window)
        .map(|(w, c)| WindowRow {
            record_id: w.record.record_id.clone(),
            method: w.record.method_name(),
            scopes: w.record.scopes.clone(),
            from_ns: w.from_ns,
            until_ns: w.effective_end(),
            end: serde_json::to_value(&w.end)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            by_kind: c.by_kind(),
            by_scope: c.by_scope(),
        })
        .collect();

    let ledger_rows = ledger_rows(&entries);
    let exports = exports(store, &entries, opts)?;

    // Sealed events: commands, runs, and content when asked for.
    let mut commands: HashMap<String, (u64, u64)> = HashMap::new();
    let mut runs: Vec<(i64, String, i64, Option<i64>)> = Vec::new();
    let mut tests_run = 0u64;
    let mut tests_failed = 0u64;
    let mut typed: BTreeMap<i64, String> = BTreeMap::new();
    let mut titles: HashMap<String, u64> = HashMap::new();
    let mut messages = Vec::new();
    for h in held {
        let ev = match query::decode_row(
            store,
            h.code,
            Stamp {
                wall_ns: h.ts_ns,
                mono_ns: 0,
            },
            h.data.as_deref(),
            h.sealed.as_deref(),
            None,
        ) {
            Ok(e) => e,
            Err(e) => {
                sealed_note.get_or_insert_with(|| format!("some sealed fields are not shown: {e}"));
                continue;
            }
        };
        match ev.kind {
            Kind::ShellCommand | Kind::RunTest | Kind::RunBuild => {
                let line = str_field(&ev, "command").unwrap_or_default();
                let label = if opts.content { line } else { program(&line) };
                let exit = int_field(&ev, "exit");
                let failed = exit.is_some_and(|x| x != 0);
                let slot = commands.entry(label.clone()).or_default();
                slot.0 += 1;
                slot.1 += u64::from(failed);
                if ev.kind == Kind::RunTest {
                    tests_run += 1;
                    tests_failed += u64::from(failed);
                    runs.push((h.ts_ns, label, exit.unwrap_or(-1), int_field(&ev, "failed")));
                }
            }
            Kind::KeyDown => {
                if let Some(t) = str_field(&ev, "text") {
                    let hour = h.ts_ns.div_euclid(3_600 * 1_000_000_000) * 3_600 * 1_000_000_000;
                    let s = typed.entry(hour).or_default();
                    if s.len() >= TYPED_PER_HOUR {
                        if !s.ends_with(CUT_MARK) {
                            s.push_str(CUT_MARK);
                        }
                    } else {
                        // Control characters (backspace, escape) as a mark.
                        if t.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') {
                            s.push_str(&t);
                        } else if t == "\u{8}" {
                            s.push('⌫');
                        }
                    }
                }
            }
            Kind::WindowFocus => {
                if let Some(t) = str_field(&ev, "title") {
                    *titles.entry(t).or_default() += 1;
                }
            }
            Kind::GitCommit => {
                if let Some(m) = str_field(&ev, "message") {
                    messages.push((h.ts_ns, m));
                }
            }
            _ => {}
        }
    }
    let mut commands: Vec<CommandRow> = commands
        .into_iter()
        .map(|(label, (runs, failed))| CommandRow {
            label,
            runs,
            failed,
        })
        .collect();
    commands.sort_by(|a, b| b.runs.cmp(&a.runs).then(a.label.cmp(&b.label)));
    commands.truncate(TOP);
    let fixed = fixed_tests(runs);

    let content = if opts.content && sealed_note.is_none() {
        let mut files_by_edits: Vec<(&String, &u64)> = files.iter().collect();
        files_by_edits.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut snapshots = Vec::new();
        for (path, _) in files_by_edits.into_iter().take(SNAPSHOT_FILES) {
            if let Some((_, blob)) = latest_blob.get(path) {
                match writer::load_blob(store, *blob) {
                    Ok(bytes) => {
                        let cut = &bytes[..bytes.len().min(SNAPSHOT_BYTES)];
                        snapshots.push((path.clone(), String::from_utf8_lossy(cut).into_owned()));
                    }
                    Err(e) => snapshots.push((path.clone(), format!("(cannot be read: {e})"))),
                }
            }
        }
        let mut titles: Vec<(String, u64)> = titles.into_iter().collect();
        titles.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        titles.truncate(50);
        messages.sort();
        Some(Content {
            typed: typed.into_iter().collect(),
            titles,
            snapshots,
            messages,
        })
    } else {
        None
    };

    let mut files: Vec<(String, u64)> = files.into_iter().collect();
    files.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    files.truncate(TOP);

    Ok(Model {
        generated_ns: opts.now_ns,
        first_day_ns,
        days,
        bin_ns,
        bins_per_day,
        from_ns,
        to_ns,
        lanes,
        apps,
        focus_runs,
        windows,
        outside_consent: outside.by_kind(),
        synthetic: synthetic.by_kind(),
        by_kind: total.by_kind(),
        unknown_kinds: unknown,
        gaps: marks,
        gap_totals,
        exports,
        ledger: ledger_rows,
        ledger_status,
        files,
        commands,
        tests_run,
        tests_failed,
        fixed,
        content,
        sealed_note,
        audit: None,
    })
}

/// Test commands that failed and then, at a later run of the same
/// command, passed.
fn fixed_tests(mut runs: Vec<(i64, String, i64, Option<i64>)>) -> Vec<Fixed> {
    runs.sort_by_key(|r| r.0);
    let mut failing: HashMap<String, (i64, Option<i64>, u64)> = HashMap::new();
    let mut out = Vec::new();
    for (ts, label, exit, failed) in runs {
        if exit != 0 {
            let slot = failing.entry(label).or_insert((ts, failed, 0));
            slot.2 += 1;
        } else if let Some((failed_ns, failed_tests, attempts)) = failing.remove(&label) {
            out.push(Fixed {
                label,
                failed_ns,
                passed_ns: ts,
                failed_tests,
                attempts: attempts + 1,
            });
        }
    }
    out.reverse();
    out.truncate(TOP);
    out
}

fn ledger_rows(entries: &[ledger::Entry]) -> Vec<LedgerRow> {
    entries
        .iter()
        .map(|e| {
            let d = &e.data;
            let scopes = d["record"]["scopes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let detail = match e.action.as_str() {
                "grant" | "amend" => format!(
                    "record {} until {}",
                    d["record"]["record_id"].as_str().unwrap_or("?"),
                    d["record"]["expires_at"].as_str().unwrap_or("?")
                ),
                "pause" | "resume" => d["reason"].as_str().unwrap_or("").to_owned(),
                "export" => format!(
                    "export {} ({} events)",
                    d["export_id"].as_str().unwrap_or("?"),
                    d["events"]
                ),
                _ => {
                    let mut s = d.to_string();
                    if s.len() > 160 {
                        let mut cut = 160;
                        while !s.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        s.truncate(cut);
                        s.push('…');
                    }
                    s
                }
            };
            LedgerRow {
                seq: e.seq,
                ts_ns: e.ts_ns,
                action: e.action.clone(),
                scopes,
                detail,
                hash: e.hash.clone(),
            }
        })
        .collect()
}

fn exports(
    store: &Store,
    entries: &[ledger::Entry],
    opts: &Options,
) -> Result<Vec<ExportMark>, ReportError> {
    let rows = store.export_rows()?;
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.action == "export") {
        let d = &e.data;
        let row = rows.iter().find(|r| r.ledger_seq == e.seq);
        let sha = d["manifest_sha256"].as_str().unwrap_or_default().to_owned();
        let out_name = d["out_name"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| row.map(|r| r.out_name.clone()))
            .unwrap_or_default();
        let (excluded, manifest_note) = match &opts.exports_dir {
            None => (None, "manifest not read (pass --exports-dir)".to_owned()),
            Some(dir) => read_manifest(&dir.join(&out_name).join("manifest.json"), &sha),
        };
        let formats = d["formats"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .or_else(|| row.map(|r| r.formats.clone()))
            .unwrap_or_default();
        out.push(ExportMark {
            export_id: d["export_id"].as_str().unwrap_or("?").to_owned(),
            ts_ns: e.ts_ns,
            seq: e.seq,
            formats,
            events: d["events"].as_u64().unwrap_or(0),
            episodes: d["episodes"].as_u64().unwrap_or(0),
            actions: d["actions"].as_u64().unwrap_or(0),
            manifest_sha256: sha,
            out_name,
            synthetic: d["synthetic"].as_bool().unwrap_or(false),
            excluded,
            manifest_note,
        });
    }
    Ok(out)
}

/// An export's manifest figures, when its file is there and hashes to what
/// the ledger recorded (otherwise the figures could be anyone's).
fn read_manifest(path: &std::path::Path, sha: &str) -> (Option<BTreeMap<String, u64>>, String) {
    use sha2::Digest;
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return (None, format!("{} not read: {e}", path.display())),
    };
    if hex::encode(sha2::Sha256::digest(&bytes)) != sha {
        return (
            None,
            format!(
                "{} does not match the ledger's hash: not shown",
                path.display()
            ),
        );
    }
    let Ok(m) = serde_json::from_slice::<Json>(&bytes) else {
        return (None, format!("{} is not JSON", path.display()));
    };
    let excluded = m["counts"]["events_excluded"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    (Some(excluded), "manifest matches the ledger".to_owned())
}
