//! The report's HTML: one self-contained file. Styles and the zoom script
//! are inline and allowed by hash in a Content-Security-Policy whose
//! default is 'none', so the page can make no request at all; charts are
//! inline SVG drawn from the model's aggregates (one path per lane per day,
//! one rect per merged run or gap mark), never one element per event.
//! Every chart has a text alternative and a table with the same numbers,
//! and patterns, not colour alone, tell apps and gap reasons apart.

use std::fmt::Write as _;

use super::model::{Lane, Model, DAY_NS, MINUTE_NS};
use crate::store::query::format_ns;
use crate::units;

/// How many apps get their own pattern in the focus lane.
pub const APP_PATTERNS: usize = 6;
const LANE_H: i64 = 24;
const LANE_STEP: i64 = 28;
const SVG_H: i64 = LANE_STEP * 8;
/// Gap marks listed one per row; beyond this the table says how many more.
const MAX_MARK_ROWS: usize = 2_000;

const GAP_REASONS: [&str; 5] = ["dropped", "paused", "excluded", "crashed", "rate-limited"];

const CSS: &str = r#"
body{font:14px/1.4 "DejaVu Sans",system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em;color:#111;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{border-bottom:2px solid #333;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #999;padding:.15em .5em;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:"DejaVu Sans Mono",monospace;font-size:.92em}
.tl-row{display:grid;grid-template-columns:11rem 1fr;align-items:start}
.lane-labels div{height:28px;line-height:24px;font-size:.85em;overflow:hidden;white-space:nowrap}
svg.tl{width:100%;height:224px;display:block;border:1px solid #666;background:#fff}
.axis{display:grid;grid-template-columns:repeat(24,1fr);font-size:.75em;color:#333;margin-left:11rem}
.axis.hour{grid-template-columns:repeat(12,1fr)}
.axis span{border-left:1px solid #999;padding-left:2px}
figure.day{margin:1em 0}figcaption{font-weight:bold}
.controls button{margin:1px;min-width:2.6em}.controls button[aria-pressed=true]{background:#111;color:#fff}
.legend{display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.5em 0}.legend svg{width:28px;height:14px;vertical-align:middle;border:1px solid #333}
.verdict-pass{font-weight:bold;border:3px solid #111;padding:.3em .6em;display:inline-block}
.verdict-fail{font-weight:bold;border:3px dashed #111;padding:.3em .6em;display:inline-block;background:#eee}
pre.content{white-space:pre-wrap;border:1px solid #999;padding:.5em;max-height:30em;overflow:auto}
.sr{position:absolute;left:-9999px}
.bar{display:inline-block}
"#;

const JS: &str = r#"
(function(){
  var sel=document.getElementById('day-select');
  var days=Array.prototype.slice.call(document.querySelectorAll('figure.day'));
  var status=document.getElementById('zoom-status');
  var tl=document.getElementById('timeline');
  var hour=tl.getAttribute('data-initial-hour')||'all';
  function pad(n){return (n<10?'0':'')+n;}
  function apply(){
    var d=sel.value;
    days.forEach(function(f){
      f.hidden=(d!=='all'&&f.getAttribute('data-day')!==d);
      var svg=f.querySelector('svg.tl');
      var dayAxis=f.querySelector('.axis.day'),hourAxis=f.querySelector('.axis.hour');
      if(hour==='all'){svg.setAttribute('viewBox','0 0 1440 '+svg.getAttribute('data-h'));dayAxis.hidden=false;hourAxis.hidden=true;}
      else{
        var h=parseInt(hour,10);svg.setAttribute('viewBox',(h*60)+' 0 60 '+svg.getAttribute('data-h'));
        dayAxis.hidden=true;hourAxis.hidden=false;
        var spans=hourAxis.querySelectorAll('span');
        for(var i=0;i<spans.length;i++){spans[i].textContent=pad(h)+':'+pad(i*5);}
      }
    });
    document.querySelectorAll('button[data-hour]').forEach(function(b){b.setAttribute('aria-pressed',b.getAttribute('data-hour')===hour?'true':'false');});
    status.textContent='Showing '+(d==='all'?'every day':d)+', '+(hour==='all'?'the whole day':'the hour from '+pad(parseInt(hour,10))+':00');
  }
  sel.addEventListener('change',apply);
  document.querySelectorAll('button[data-hour]').forEach(function(b){
    b.addEventListener('click',function(){hour=b.getAttribute('data-hour');apply();});
  });
  apply();
})();
"#;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn csp_hash(s: &str) -> String {
    use base64_lite::encode;
    use sha2::Digest;
    format!("'sha256-{}'", encode(&sha2::Sha256::digest(s.as_bytes())))
}

/// Base64 for the CSP hashes; a dozen lines rather than a dependency.
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(b: &[u8]) -> String {
        let mut o = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    o.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    o.push('=');
                }
            }
        }
        o
    }
}

fn day_name(ns: i64) -> String {
    format_ns(ns)[..10].to_owned()
}

fn time_short(ns: i64) -> String {
    let s = format_ns(ns);
    format!("{} {}", &s[..10], &s[11..19])
}

/// x in minutes within the day starting at `day`.
fn x_of(ns: i64, day: i64) -> f64 {
    ((ns - day).clamp(0, DAY_NS)) as f64 / MINUTE_NS as f64
}

fn fmt_x(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

fn defs(o: &mut String) {
    // Patterns that stay apart in greyscale: stripes at different angles,
    // dots, solid fills of different darkness.
    o.push_str(r##"<svg width="0" height="0" aria-hidden="true" class="sr"><defs>
<pattern id="app-0" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#1f3a93"/></pattern>
<pattern id="app-1" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="4" height="4" fill="#fdd"/><rect width="2" height="4" fill="#b3261e"/></pattern>
<pattern id="app-2" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#dfd"/><circle cx="2" cy="2" r="1.2" fill="#1b5e20"/></pattern>
<pattern id="app-3" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#ffe9c7"/><rect width="4" height="2" fill="#8a5300"/></pattern>
<pattern id="app-4" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="4" height="4" fill="#eee"/><rect width="1" height="4" fill="#4a148c"/><rect width="4" height="1" fill="#4a148c"/></pattern>
<pattern id="app-5" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#9e9e9e"/></pattern>
<pattern id="app-other" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#fff"/><rect width="1" height="4" fill="#555"/></pattern>
<pattern id="gap-dropped" width="3" height="3" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="3" fill="#fcc"/><rect width="1" height="3" fill="#900"/><rect width="3" height="1" fill="#900"/></pattern>
<pattern id="gap-paused" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ddd"/><rect width="3" height="6" fill="#777"/></pattern>
<pattern id="gap-excluded" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#fff3c4"/><rect width="2" height="4" fill="#6d4c00"/></pattern>
<pattern id="gap-crashed" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#222"/></pattern>
<pattern id="gap-rate-limited" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#e3f2fd"/><circle cx="2" cy="2" r="1.4" fill="#0d47a1"/></pattern>
<pattern id="gap-other" width="4" height="4" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="#ccc"/><rect width="4" height="1" fill="#000"/></pattern>
<pattern id="band-0" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="#eef5ee"/></pattern>
<pattern id="band-1" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="#f0eef7"/><circle cx="4" cy="4" r=".7" fill="#bbb"/></pattern>
</defs></svg>"##);
}

fn gap_pattern(reason: &str) -> String {
    if GAP_REASONS.contains(&reason) {
        format!("gap-{reason}")
    } else {
        "gap-other".to_owned()
    }
}

fn swatch(o: &mut String, pattern: &str, label: &str) {
    let _ = write!(
        o,
        r#"<span><svg viewBox="0 0 28 14" aria-hidden="true"><rect width="28" height="14" fill="url(#{pattern})"/></svg> {}</span>"#,
        esc(label)
    );
}

/// One lane's density on one day: a single step path.
fn density_path(bins: &[u32], bin_min: i64, base: i64, max: u32) -> String {
    let mut d = format!("M0,{base}");
    let mut cur = 0i64;
    let mut pending = 0i64;
    for &n in bins {
        let level = if n == 0 || max == 0 {
            0
        } else {
            ((u64::from(n) * (LANE_H as u64 - 2)).div_ceil(u64::from(max)) as i64).max(1)
        };
        if level != cur {
            if pending > 0 {
                let _ = write!(d, "h{pending}");
                pending = 0;
            }
            let _ = write!(d, "V{}", base - level);
            cur = level;
        }
        pending += bin_min;
    }
    if pending > 0 {
        let _ = write!(d, "h{pending}");
    }
    let _ = write!(d, "V{base}Z");
    d
}

fn app_label(m: &Model, app: Option<usize>) -> String {
    match app {
        Some(i) => m.apps[i].app.clone(),
        None => "other apps".to_owned(),
    }
}

fn app_pattern(app: Option<usize>) -> String {
    match app {
        Some(i) => format!("app-{i}"),
        None => "app-other".to_owned(),
    }
}

fn th(o: &mut String, cols: &[&str]) {
    o.push_str("<thead><tr>");
    for c in cols {
        let _ = write!(o, r#"<th scope="col">{}</th>"#, esc(c));
    }
    o.push_str("</tr></thead>");
}

fn num_td(o: &mut String, n: u64, attr: &str) {
    let _ = write!(o, r#"<td class="n" {attr}="{n}">{}</td>"#, units::count(n));
}

/// The whole page. `title` names the view (engineer's or reviewer's).
pub fn render(m: &Model, title: &str) -> String {
    let mut body = String::with_capacity(1 << 20);
    let o = &mut body;
    let bin_min = m.bin_ns / MINUTE_NS;
    let _ = write!(
        o,
        "<header><h1>{}</h1><p>From {} to {} (UTC), {} day(s); activity in bins of {} minute(s). Generated {}. This file was written on this machine and makes no network request.</p>",
        esc(title),
        esc(&time_short(m.from_ns)),
        esc(&time_short(m.to_ns)),
        m.days,
        bin_min,
        esc(&time_short(m.generated_ns))
    );
    o.push_str(r##"<nav aria-label="Sections"><a href="#timeline">Timeline</a> · <a href="#consent">Under each consent</a> · <a href="#not-captured">Not captured</a> · <a href="#engineer">For the engineer</a> · <a href="#reviewer">For the reviewer</a></nav></header><main>"##);
    if let Some(note) = &m.sealed_note {
        let _ = write!(
            o,
            r#"<p id="sealed-note"><strong>Note:</strong> {}</p>"#,
            esc(note)
        );
    }
    if let Some(a) = &m.audit {
        audit_section(o, a);
    }
    defs(o);
    timeline(o, m);
    consent_section(o, m);
    gaps_section(o, m);
    engineer(o, m);
    if let Some(c) = &m.content {
        content_section(o, c);
    }
    reviewer(o, m);
    o.push_str("</main>");

    let csp = format!(
        "default-src 'none'; style-src {}; script-src {}; img-src 'none'; base-uri 'none'; form-action 'none'",
        csp_hash(CSS),
        csp_hash(JS)
    );
    let mut page = String::with_capacity(body.len() + 8192);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{CSS}</style></head><body>",
        esc(title)
    );
    page.push_str(&body);
    let _ = writeln!(page, "<script>{JS}</script></body></html>");
    page
}

fn audit_section(o: &mut String, a: &crate::audit::AuditReport) {
    let verdict = if a.ok { "PASS" } else { "FAIL" };
    let _ = write!(
        o,
        r#"<section id="audit" data-verdict="{verdict}" aria-labelledby="audit-h"><h2 id="audit-h">Audit verdict</h2><p class="{}">{verdict}: {}</p>"#,
        if a.ok { "verdict-pass" } else { "verdict-fail" },
        if a.ok {
            "every stored event is covered by consent"
        } else if !a.ledger.intact {
            "the ledger is broken, so no event can be vouched for"
        } else {
            "events were found that consent does not cover"
        }
    );
    let _ = write!(
        o,
        "<p>{} events checked; {} synthetic (generated, not held to consent); {} pauses, {} purges, {} exports in the ledger.</p>",
        units::count(a.events_checked),
        units::count(a.synthetic_events),
        a.pauses,
        a.purges,
        a.exports
    );
    if let Some(p) = &a.ledger.problem {
        let _ = write!(o, "<p>Ledger problem: {}</p>", esc(p));
    }
    o.push_str(r#"<table id="findings"><caption>Findings</caption>"#);
    th(o, &["rule", "kind", "events", "first event", "first time"]);
    o.push_str("<tbody>");
    if a.violations.is_empty() {
        o.push_str(r#"<tr><td colspan="5">none</td></tr>"#);
    }
    for v in &a.violations {
        let _ = write!(
            o,
            r#"<tr class="finding" data-rule="{}"><td>{}</td><td>{}</td>"#,
            esc(v.rule),
            esc(v.rule),
            esc(&v.kind)
        );
        num_td(o, v.events, "data-events");
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td></tr>",
            v.first_event_id,
            esc(&v.first_time)
        );
    }
    o.push_str("</tbody></table></section>");
}

/// The days worth a figure: those with an event, a gap or an export (a
/// long range of quiet days would otherwise cost a figure each).
fn drawn_days(m: &Model) -> Vec<usize> {
    (0..m.days)
        .filter(|&d| {
            let (day, end) = (m.day_start(d), m.day_start(d) + DAY_NS);
            let range = d * m.bins_per_day..(d + 1) * m.bins_per_day;
            m.lanes
                .iter()
                .any(|l| l.bins[range.clone()].iter().any(|&n| n > 0))
                || m.gaps.iter().any(|g| g.end_ns >= day && g.start_ns < end)
                || m.exports.iter().any(|e| e.ts_ns >= day && e.ts_ns < end)
        })
        .collect()
}

fn timeline(o: &mut String, m: &Model) {
    let bin_min = m.bin_ns / MINUTE_NS;
    // A range within one hour opens zoomed into it: at a whole day's
    // width it would be a sliver.
    let hour_ns = 3_600 * 1_000_000_000;
    let initial = if m.from_ns.div_euclid(hour_ns) == (m.to_ns - 1).div_euclid(hour_ns) {
        format!("{}", m.from_ns.rem_euclid(DAY_NS) / hour_ns)
    } else {
        "all".to_owned()
    };
    let _ = write!(
        o,
        r#"<section id="timeline" data-initial-hour="{initial}" aria-labelledby="timeline-h"><h2 id="timeline-h">Timeline</h2>"#
    );
    o.push_str(r#"<p>One lane per source; each lane's height is its activity per bin, scaled to that lane's busiest bin. Consent windows are the shaded bands behind the lanes, gaps (what was not captured) the hatched marks across them, exports the dashed lines. Hover a mark for its details, or read the tables below.</p>"#);
    // Zoom.
    o.push_str(r#"<div class="controls"><label for="day-select">Day </label><select id="day-select"><option value="all">every day</option>"#);
    let drawn = drawn_days(m);
    for &d in &drawn {
        let name = day_name(m.day_start(d));
        let _ = write!(o, r#"<option value="{name}">{name}</option>"#);
    }
    o.push_str(r#"</select> <span role="group" aria-label="Hour">Hour: <button type="button" data-hour="all" aria-pressed="true">whole day</button>"#);
    for h in 0..24 {
        let _ = write!(
            o,
            r#"<button type="button" data-hour="{h}">{h:02}</button>"#
        );
    }
    o.push_str(r#"</span><p id="zoom-status" aria-live="polite"></p></div>"#);
    // Legend.
    o.push_str(r#"<div class="legend" id="legend"><strong>Focus:</strong>"#);
    for (i, a) in m.apps.iter().take(APP_PATTERNS).enumerate() {
        swatch(o, &format!("app-{i}"), &a.app);
    }
    swatch(o, "app-other", "other apps");
    o.push_str("<strong>Gaps:</strong>");
    for r in GAP_REASONS {
        swatch(o, &gap_pattern(r), r);
    }
    o.push_str("<strong>Consent:</strong>");
    swatch(o, "band-0", "consent window");
    swatch(o, "band-1", "next consent window");
    o.push_str("</div>");

    let maxes: Vec<u32> = m
        .lanes
        .iter()
        .map(|l| l.bins.iter().copied().max().unwrap_or(0))
        .collect();
    if drawn.len() < m.days {
        let _ = write!(
            o,
            r#"<p id="empty-days">{} day(s) of the range hold no event, gap or export and are not drawn.</p>"#,
            m.days - drawn.len()
        );
    }
    for &d in &drawn {
        let day = m.day_start(d);
        let day_end = day + DAY_NS;
        let name = day_name(day);
        let range = d * m.bins_per_day..(d + 1) * m.bins_per_day;
        let lane_totals: Vec<u64> = m
            .lanes
            .iter()
            .map(|l| l.bins[range.clone()].iter().map(|&n| u64::from(n)).sum())
            .collect();
        let _ = write!(
            o,
            r#"<figure class="day" data-day="{name}"><figcaption>{name}</figcaption><div class="tl-row"><div class="lane-labels" aria-hidden="true">"#
        );
        for l in Lane::ALL {
            let _ = write!(o, "<div>{}</div>", esc(l.label()));
        }
        let _ = write!(
            o,
            r#"</div><svg class="tl" data-h="{SVG_H}" viewBox="0 0 1440 {SVG_H}" preserveAspectRatio="none" role="img" aria-labelledby="t-{d} d-{d}"><title id="t-{d}">Activity on {name}</title><desc id="d-{d}">"#
        );
        // The text alternative: totals and busiest hour per lane, windows,
        // gaps and exports of the day.
        let mut desc = String::new();
        for (i, l) in Lane::ALL.iter().enumerate() {
            let bins = &m.lanes[i].bins[range.clone()];
            let per_hour = (60 / bin_min).max(1) as usize;
            let busiest = bins
                .chunks(per_hour)
                .enumerate()
                .map(|(h, c)| (c.iter().map(|&n| u64::from(n)).sum::<u64>(), h))
                .max();
            let _ = write!(
                desc,
                "{}: {} events",
                l.label(),
                units::count(lane_totals[i])
            );
            if let Some((n, h)) = busiest.filter(|b| b.0 > 0) {
                let _ = write!(desc, ", busiest {h:02}:00 ({})", units::count(n));
            }
            desc.push_str(". ");
        }
        o.push_str(&esc(&desc));
        o.push_str("</desc>");
        // Bands.
        for (i, w) in m.windows.iter().enumerate() {
            if w.until_ns <= day || w.from_ns >= day_end {
                continue;
            }
            let (x0, x1) = (x_of(w.from_ns, day), x_of(w.until_ns, day));
            let _ = write!(
                o,
                r##"<rect class="band" data-record="{}" data-scopes="{}" x="{}" y="0" width="{}" height="{SVG_H}" fill="url(#band-{})" stroke="#2e7d32" stroke-width="1" vector-effect="non-scaling-stroke"><title>Consent {} ({}): {}; from {} until {} ({})</title></rect>"##,
                esc(&w.record_id),
                esc(&w.scopes.join(",")),
                fmt_x(x0),
                fmt_x((x1 - x0).max(0.0)),
                i % 2,
                esc(&w.record_id),
                w.method,
                esc(&w.scopes.join(", ")),
                esc(&time_short(w.from_ns)),
                esc(&time_short(w.until_ns)),
                esc(&w.end)
            );
        }
        // Lanes.
        for (i, l) in Lane::ALL.iter().enumerate() {
            let y = i as i64 * LANE_STEP;
            let _ = write!(
                o,
                r##"<g class="lane" data-lane="{}" data-events="{}"><title>{}: {} events</title><line x1="0" x2="1440" y1="{}" y2="{}" stroke="#bbb" vector-effect="non-scaling-stroke"/>"##,
                l.name(),
                lane_totals[i],
                esc(l.label()),
                units::count(lane_totals[i]),
                y + LANE_H,
                y + LANE_H
            );
            if *l == Lane::Focus {
                for r in m
                    .focus_runs
                    .iter()
                    .filter(|r| r.start_ns >= day && r.start_ns < day_end)
                {
                    let (x0, x1) = (x_of(r.start_ns, day), x_of(r.end_ns, day));
                    let label = app_label(m, r.app);
                    let _ = write!(
                        o,
                        r#"<rect class="focus-run" data-app="{}" x="{}" y="{}" width="{}" height="{}" fill="url(#{})"><title>{} {}–{}</title></rect>"#,
                        esc(&label),
                        fmt_x(x0),
                        y + 2,
                        fmt_x(x1 - x0),
                        LANE_H - 2,
                        app_pattern(r.app),
                        esc(&label),
                        esc(&time_short(r.start_ns)[11..16]),
                        esc(&time_short(r.end_ns)[11..16])
                    );
                }
            } else if lane_totals[i] > 0 {
                let _ = write!(
                    o,
                    r##"<path class="density" d="{}" fill="#333" stroke="none"/>"##,
                    density_path(
                        &m.lanes[i].bins[range.clone()],
                        bin_min,
                        y + LANE_H,
                        maxes[i]
                    )
                );
            }
            o.push_str("</g>");
        }
        // Gaps, on top.
        for g in &m.gaps {
            if g.end_ns < day || g.start_ns >= day_end {
                continue;
            }
            let starts_here = g.start_ns >= day;
            let x0 = x_of(g.start_ns, day);
            let x1 = x_of(g.end_ns, day).max(x0 + 0.5);
            let counted = if starts_here {
                format!(
                    r#"class="gap" data-reason="{}" data-spans="{}" data-count="{}""#,
                    esc(&g.reason),
                    g.spans,
                    g.count
                )
            } else {
                format!(r#"class="gap-cont" data-reason="{}""#, esc(&g.reason))
            };
            let _ = write!(
                o,
                r#"<rect {counted} x="{}" y="0" width="{}" height="{SVG_H}" fill="url(#{})" fill-opacity="0.8"><title>{}: {} span(s), {} event(s) not captured{}, {} to {}</title></rect>"#,
                fmt_x(x0),
                fmt_x(x1 - x0),
                gap_pattern(&g.reason),
                esc(&g.reason),
                units::count(g.spans),
                units::count(g.count),
                if g.lost_kinds.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", esc(&g.lost_kinds.join(", ")))
                },
                esc(&time_short(g.start_ns)),
                esc(&time_short(g.end_ns))
            );
        }
        // Exports.
        for e in m
            .exports
            .iter()
            .filter(|e| e.ts_ns >= day && e.ts_ns < day_end)
        {
            let x = fmt_x(x_of(e.ts_ns, day));
            let _ = write!(
                o,
                r##"<line class="export" data-export-id="{}" x1="{x}" x2="{x}" y1="0" y2="{SVG_H}" stroke="#000" stroke-width="3" stroke-dasharray="6 3" vector-effect="non-scaling-stroke"><title>Export {} at {}: {} events</title></line>"##,
                esc(&e.export_id),
                esc(&e.export_id),
                esc(&time_short(e.ts_ns)),
                units::count(e.events)
            );
        }
        o.push_str(r#"</svg></div><div class="axis day" aria-hidden="true">"#);
        for h in 0..24 {
            let _ = write!(o, "<span>{h:02}</span>");
        }
        o.push_str(r#"</div><div class="axis hour" hidden aria-hidden="true">"#);
        for _ in 0..12 {
            o.push_str("<span></span>");
        }
        o.push_str("</div></figure>");
    }

    // The same data as tables.
    o.push_str(
        r#"<table id="lanes-table"><caption>Events per lane over the whole range</caption>"#,
    );
    th(o, &["lane", "kinds", "events"]);
    o.push_str("<tbody>");
    for l in Lane::ALL {
        let kinds: Vec<&str> = l.kinds().iter().map(|k| k.name()).collect();
        let _ = write!(
            o,
            r#"<tr data-lane="{}"><th scope="row">{}</th><td>{}</td>"#,
            l.name(),
            esc(l.label()),
            kinds.join(", ")
        );
        num_td(o, m.lane(l).total, "data-events");
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    o.push_str(r#"<details id="table-view"><summary>The timeline as a table (events per hour and lane)</summary><table id="hourly">"#);
    let mut cols = vec!["hour (UTC)"];
    cols.extend(Lane::ALL.iter().map(|l| l.label()));
    th(o, &cols);
    o.push_str("<tbody>");
    let per_hour = (60 / bin_min).max(1) as usize;
    let hours = m.days * m.bins_per_day / per_hour;
    for h in 0..hours {
        let sums: Vec<u64> = m
            .lanes
            .iter()
            .map(|l| {
                l.bins[h * per_hour..(h + 1) * per_hour]
                    .iter()
                    .map(|&n| u64::from(n))
                    .sum()
            })
            .collect();
        if sums.iter().all(|&n| n == 0) {
            continue;
        }
        let t = time_short(m.first_day_ns + h as i64 * 3_600 * 1_000_000_000);
        let _ = write!(o, r#"<tr><th scope="row">{}</th>"#, &t[..16]);
        for (i, n) in sums.iter().enumerate() {
            num_td(o, *n, &format!("data-{}", Lane::ALL[i].name()));
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table></details></section>");
}

fn consent_section(o: &mut String, m: &Model) {
    o.push_str(r#"<section id="consent" aria-labelledby="consent-h"><h2 id="consent-h">What was recorded under each consent</h2>"#);
    o.push_str(r#"<table id="consent-table">"#);
    th(
        o,
        &[
            "record",
            "method",
            "scopes",
            "from",
            "until",
            "ended",
            "events by kind",
            "events by scope",
        ],
    );
    o.push_str("<tbody>");
    if m.windows.is_empty() {
        o.push_str(r#"<tr><td colspan="8">No consent was ever given.</td></tr>"#);
    }
    for w in &m.windows {
        let total: u64 = w.by_kind.values().sum();
        let _ = write!(
            o,
            r#"<tr class="window" data-record="{}" data-events="{total}"><td class="mono">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>"#,
            esc(&w.record_id),
            esc(&w.record_id),
            w.method,
            esc(&w.scopes.join(", ")),
            esc(&time_short(w.from_ns)),
            esc(&time_short(w.until_ns)),
            esc(&w.end)
        );
        kv_list(o, &w.by_kind, "data-kind");
        o.push_str("</td><td>");
        kv_list(o, &w.by_scope, "data-scope");
        o.push_str("</td></tr>");
    }
    o.push_str("</tbody></table>");
    if !m.synthetic.is_empty() {
        o.push_str(r#"<p id="synthetic">Synthetic sessions (generated, not captured from a person, not held to consent): "#);
        kv_list(o, &m.synthetic, "data-kind");
        o.push_str("</p>");
    }
    if !m.outside_consent.is_empty() {
        o.push_str(r#"<p id="outside-consent"><strong>Outside every consent window</strong> (run <code>candor audit</code>): "#);
        kv_list(o, &m.outside_consent, "data-kind");
        o.push_str("</p>");
    }
    o.push_str(r#"<table id="kinds"><caption>Counts per kind over the range</caption>"#);
    th(o, &["kind", "scope", "events"]);
    o.push_str("<tbody>");
    for (k, n) in &m.by_kind {
        let scope = crate::registry::Kind::ALL
            .iter()
            .find(|x| x.name() == *k)
            .map_or("?", |x| x.scope().name());
        let _ = write!(o, r#"<tr data-kind="{k}"><td>{k}</td><td>{scope}</td>"#);
        num_td(o, *n, "data-events");
        o.push_str("</tr>");
    }
    if m.unknown_kinds > 0 {
        let _ = write!(
            o,
            "<tr><td>unknown (newer Candor)</td><td>?</td><td class=\"n\">{}</td></tr>",
            units::count(m.unknown_kinds)
        );
    }
    o.push_str("</tbody></table></section>");
}

fn kv_list(o: &mut String, map: &std::collections::BTreeMap<&'static str, u64>, attr: &str) {
    if map.is_empty() {
        o.push_str("nothing");
        return;
    }
    o.push_str("<ul>");
    for (k, n) in map {
        let _ = write!(
            o,
            r#"<li {attr}="{k}" data-events="{n}">{k}: {}</li>"#,
            units::count(*n)
        );
    }
    o.push_str("</ul>");
}

fn gaps_section(o: &mut String, m: &Model) {
    o.push_str(r#"<section id="not-captured" aria-labelledby="gaps-h"><h2 id="gaps-h">What was not captured</h2>"#);
    o.push_str(r#"<table id="gaps-table"><caption>Gaps by reason</caption>"#);
    th(o, &["reason", "spans", "events not captured", "time"]);
    o.push_str("<tbody>");
    if m.gap_totals.is_empty() {
        o.push_str(r#"<tr><td colspan="4">No gaps: nothing was dropped, paused, excluded, crashed or rate-limited.</td></tr>"#);
    }
    for (r, t) in &m.gap_totals {
        let _ = write!(
            o,
            r#"<tr data-reason="{}"><th scope="row">{}</th>"#,
            esc(r),
            esc(r)
        );
        num_td(o, t.spans, "data-spans");
        num_td(o, t.count, "data-count");
        let _ = write!(o, "<td>{}</td></tr>", units::duration_ns(t.total_ns));
    }
    o.push_str("</tbody></table>");
    o.push_str(
        r#"<details><summary>Every gap mark on the timeline</summary><table id="gap-marks">"#,
    );
    th(
        o,
        &["reason", "from", "to", "spans", "events", "lost kinds"],
    );
    o.push_str("<tbody>");
    for g in m.gaps.iter().take(MAX_MARK_ROWS) {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(&g.reason),
            esc(&time_short(g.start_ns)),
            esc(&time_short(g.end_ns))
        );
        num_td(o, g.spans, "data-spans");
        num_td(o, g.count, "data-count");
        let _ = write!(o, "<td>{}</td></tr>", esc(&g.lost_kinds.join(", ")));
    }
    if m.gaps.len() > MAX_MARK_ROWS {
        let _ = write!(
            o,
            r#"<tr><td colspan="6">and {} more marks (see the totals above)</td></tr>"#,
            units::count((m.gaps.len() - MAX_MARK_ROWS) as u64)
        );
    }
    o.push_str("</tbody></table></details></section>");
}

fn engineer(o: &mut String, m: &Model) {
    o.push_str(
        r#"<section id="engineer" aria-labelledby="eng-h"><h2 id="eng-h">For the engineer</h2>"#,
    );
    // Top apps, drawn as bars (a handful of rects) and tabled.
    let max = m.apps.first().map_or(1, |a| a.focus_ns.max(1));
    o.push_str(r#"<table id="apps"><caption>Top apps by focus time (a focus lasts until the next change, at most 15 minutes)</caption>"#);
    th(o, &["app", "focus time", "", "switches to it"]);
    o.push_str("<tbody>");
    if m.apps.is_empty() {
        o.push_str(r#"<tr><td colspan="4">No focus was recorded.</td></tr>"#);
    }
    for (i, a) in m.apps.iter().enumerate() {
        let w = (a.focus_ns as f64 / max as f64 * 200.0).max(1.0);
        let pat = if i < APP_PATTERNS {
            format!("app-{i}")
        } else {
            "app-other".to_owned()
        };
        let _ = write!(
            o,
            r##"<tr data-app="{}" data-focus-ns="{}"><td>{}</td><td>{}</td><td><svg class="bar" width="200" height="12" role="img" aria-label="{}"><rect width="{:.1}" height="12" fill="url(#{pat})" stroke="#000"/></svg></td>"##,
            esc(&a.app),
            a.focus_ns,
            esc(&a.app),
            units::duration_ns(a.focus_ns),
            esc(&format!("{} of focus", units::duration_ns(a.focus_ns))),
            w
        );
        num_td(o, a.switches, "data-switches");
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    o.push_str(r#"<table id="files"><caption>Files by saves (paths as recorded on this machine)</caption>"#);
    th(o, &["file", "saves"]);
    o.push_str("<tbody>");
    if m.files.is_empty() {
        o.push_str(r#"<tr><td colspan="2">No file was recorded.</td></tr>"#);
    }
    for (p, n) in &m.files {
        let _ = write!(o, r#"<tr><td class="mono">{}</td>"#, esc(p));
        num_td(o, *n, "data-saves");
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    let _ = write!(
        o,
        r#"<table id="commands"><caption>Commands run, tests and builds included ({}; {} test runs, {} failed)</caption>"#,
        if m.content.is_some() {
            "whole command lines"
        } else {
            "programs only; whole lines with --content"
        },
        units::count(m.tests_run),
        units::count(m.tests_failed)
    );
    th(o, &["command", "runs", "failed"]);
    o.push_str("<tbody>");
    if m.commands.is_empty() {
        o.push_str(r#"<tr><td colspan="3">No command was recorded.</td></tr>"#);
    }
    for c in &m.commands {
        let _ = write!(o, r#"<tr><td class="mono">{}</td>"#, esc(&c.label));
        num_td(o, c.runs, "data-runs");
        num_td(o, c.failed, "data-failed");
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    o.push_str(r#"<table id="fixed"><caption>Tests that failed and then passed</caption>"#);
    th(
        o,
        &[
            "test command",
            "first failed",
            "passed",
            "failed tests",
            "runs until it passed",
        ],
    );
    o.push_str("<tbody>");
    if m.fixed.is_empty() {
        o.push_str(r#"<tr><td colspan="5">None recorded.</td></tr>"#);
    }
    for f in &m.fixed {
        let _ = write!(
            o,
            r#"<tr class="fixed"><td class="mono">{}</td><td>{}</td><td>{}</td><td class="n">{}</td>"#,
            esc(&f.label),
            esc(&time_short(f.failed_ns)),
            esc(&time_short(f.passed_ns)),
            f.failed_tests.map_or("?".to_owned(), units::count_i)
        );
        num_td(o, f.attempts, "data-attempts");
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table></section>");
}

fn content_section(o: &mut String, c: &super::model::Content) {
    o.push_str(r#"<section id="content" aria-labelledby="content-h"><h2 id="content-h">Content (shown because of --content; unsealed on this machine)</h2>"#);
    o.push_str("<h3>Typed text, by hour</h3>");
    if c.typed.is_empty() {
        o.push_str("<p>None recorded.</p>");
    }
    for (h, t) in &c.typed {
        let _ = write!(
            o,
            r#"<h4>{}</h4><pre class="content typed">{}</pre>"#,
            esc(&time_short(*h)[..16]),
            esc(t)
        );
    }
    o.push_str(r#"<h3>Window titles</h3><table id="titles">"#);
    th(o, &["title", "times focused"]);
    o.push_str("<tbody>");
    for (t, n) in &c.titles {
        let _ = write!(o, "<tr><td>{}</td>", esc(t));
        num_td(o, *n, "data-times");
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table><h3>Commit messages</h3><ul id=\"messages\">");
    for (ts, msg) in &c.messages {
        let _ = write!(o, "<li>{}: {}</li>", esc(&time_short(*ts)), esc(msg));
    }
    o.push_str("</ul><h3>Latest snapshots of the most saved files</h3>");
    for (p, text) in &c.snapshots {
        let _ = write!(
            o,
            r#"<h4 class="mono">{}</h4><pre class="content snapshot">{}</pre>"#,
            esc(p),
            esc(text)
        );
    }
    o.push_str("</section>");
}

fn reviewer(o: &mut String, m: &Model) {
    let l = &m.ledger_status;
    o.push_str(
        r#"<section id="reviewer" aria-labelledby="rev-h"><h2 id="rev-h">For the reviewer</h2>"#,
    );
    let _ = write!(
        o,
        r#"<p id="chain" data-intact="{}" data-anchor="{}">Ledger: {} entries; {}; {}{}.</p>"#,
        l.intact,
        l.anchor_checked,
        l.entries,
        if l.intact {
            "chain intact"
        } else {
            "chain BROKEN"
        },
        if l.anchor_checked {
            "anchor verified"
        } else {
            "anchor not checked (it needs the store key)"
        },
        match (&l.head, &l.problem) {
            (_, Some(p)) => format!("; {}", esc(p)),
            (Some(h), None) => format!("; head <code>{}</code>", esc(h)),
            _ => String::new(),
        }
    );
    o.push_str(r#"<table id="ledger-table"><caption>The consent ledger</caption>"#);
    th(o, &["seq", "action", "time", "scopes", "detail", "hash"]);
    o.push_str("<tbody>");
    for r in &m.ledger {
        let _ = write!(
            o,
            r#"<tr data-seq="{}" data-action="{}"><td class="n">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="mono" title="{}">{}</td></tr>"#,
            r.seq,
            esc(&r.action),
            r.seq,
            esc(&r.action),
            esc(&time_short(r.ts_ns)),
            esc(&r.scopes),
            esc(&r.detail),
            esc(&r.hash),
            esc(&r.hash[..r.hash.len().min(12)])
        );
    }
    o.push_str("</tbody></table>");
    o.push_str(r#"<table id="exports-table"><caption>Exports made from this store</caption>"#);
    th(
        o,
        &[
            "export",
            "time",
            "ledger seq",
            "formats",
            "events",
            "episodes",
            "actions",
            "left out, by reason",
            "manifest",
        ],
    );
    o.push_str("<tbody>");
    if m.exports.is_empty() {
        o.push_str(r#"<tr><td colspan="9">Nothing has been exported.</td></tr>"#);
    }
    for e in &m.exports {
        let _ = write!(
            o,
            r#"<tr data-export-id="{}"><td class="mono">{}{}</td><td>{}</td><td class="n">{}</td><td>{}</td>"#,
            esc(&e.export_id),
            esc(&e.export_id),
            if e.synthetic { " (synthetic)" } else { "" },
            esc(&time_short(e.ts_ns)),
            e.seq,
            esc(&e.formats)
        );
        num_td(o, e.events, "data-events");
        num_td(o, e.episodes, "data-episodes");
        num_td(o, e.actions, "data-actions");
        o.push_str("<td>");
        match &e.excluded {
            Some(x) if x.is_empty() => o.push_str("none"),
            Some(x) => {
                o.push_str("<ul>");
                for (k, n) in x {
                    let _ = write!(
                        o,
                        r#"<li data-reason="{}" data-events="{n}">{}: {}</li>"#,
                        esc(k),
                        esc(k),
                        units::count(*n)
                    );
                }
                o.push_str("</ul>");
            }
            None => o.push('?'),
        }
        let _ = write!(
            o,
            r#"</td><td><span class="mono" title="{}">{}</span> {} — {}</td></tr>"#,
            esc(&e.manifest_sha256),
            esc(&e.manifest_sha256[..e.manifest_sha256.len().min(12)]),
            esc(&e.out_name),
            esc(&e.manifest_note)
        );
    }
    o.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_lite::encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn density_is_one_compact_path() {
        let d = density_path(&[0, 0, 5, 5, 10, 0], 1, 24, 10);
        assert_eq!(d, "M0,24h2V13h2V2h1V24h1V24Z");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;"
        );
    }
}
