//! Redaction throughput on realistic mixed text: source code (Rust, Python,
//! TypeScript), config (YAML, TOML, JSON, .env, lockfiles), shell history
//! and prose, with about one secret per 10 KB and some personal data.
//!
//! The corpus (at least 50 MB) is generated deterministically from a fixed
//! seed, cut into documents of 2 to 64 KB as the exporter would see files
//! and typing bursts, and redacted on one thread with one placeholder book.
//! Five rounds; medians are reported. The last line is
//! `redact_mb_per_s=N`.

use std::hint::black_box;
use std::time::Instant;

use candor::redact::{Identity, Placeholders, Redactor};

const TARGET_BYTES: usize = 52 * 1024 * 1024;
const SECRET_EVERY: usize = 10 * 1024;
const ROUNDS: usize = 5;

/// splitmix64: tiny, fast, and the same on every platform and version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const WORDS: &[&str] = &[
    "buffer", "request", "response", "handler", "config", "session", "user", "index", "value",
    "result", "error", "state", "event", "stream", "parser", "token", "cache", "client", "server",
    "record", "writer", "reader", "options", "context", "payload", "schema", "table", "query",
    "batch", "retry", "timeout", "window", "cursor", "offset", "length", "count", "input",
    "output", "message", "channel", "worker", "task", "queue", "entry", "node", "tree", "path",
    "file", "key", "map", "list", "item", "field", "column", "row", "page", "limit", "format",
];

const PROSE: &[&str] = &[
    "The writer batches events before committing them to the database.",
    "We decided to keep the access log for thirty days, then rotate it.",
    "This function returns an error when the session token has expired.",
    "Note that the cache key is derived from the request path and the query.",
    "Run the migration before deploying the new version of the service.",
    "The benchmark measures throughput on one core with a warm cache.",
    "Authentication happens in the gateway; services trust its headers.",
    "If the retry budget is exhausted the task is moved to the dead-letter queue.",
    "See the design document for the trade-offs we considered.",
    "Passwords are never logged; the audit trail only records the user id.",
];

fn ident(rng: &mut Rng) -> String {
    let a = rng.pick(WORDS);
    let b = rng.pick(WORDS);
    match rng.below(3) {
        0 => format!("{a}_{b}"),
        1 => {
            let mut c = b.to_owned();
            c[..1].make_ascii_uppercase();
            format!("{a}{c}")
        }
        _ => a.to_owned(),
    }
}

fn rust(rng: &mut Rng, out: &mut String) {
    let f = ident(rng);
    let a = ident(rng);
    let b = ident(rng);
    let n = rng.below(10_000);
    out.push_str(&format!(
        "/// Returns the {a} for the given {b}, or an error when it is missing.\n\
         pub fn {f}(&self, {a}: &str, {b}: usize) -> Result<Option<String>, Error> {{\n\
         \x20   let mut {b}_len = {b}.saturating_add({n});\n\
         \x20   if let Some(entry) = self.{a}_map.get({a}) {{\n\
         \x20       tracing::debug!(\"found {{}} in {{:?}}\", {a}, entry);\n\
         \x20       return Ok(Some(entry.to_string()));\n\
         \x20   }}\n\
         \x20   let key = format!(\"{{}}:{{}}\", self.prefix, {a});\n\
         \x20   {b}_len += key.len();\n\
         \x20   Err(Error::NotFound {{ key, len: {b}_len }})\n\
         }}\n\n"
    ));
}

fn python(rng: &mut Rng, out: &mut String) {
    let f = ident(rng);
    let a = ident(rng);
    let n = rng.below(500);
    out.push_str(&format!(
        "def {f}(self, {a}, timeout={n}):\n\
         \x20   \"\"\"Fetch the {a} and retry on failure.\"\"\"\n\
         \x20   api_key = os.environ[\"API_KEY\"]\n\
         \x20   headers = {{\"Authorization\": f\"Bearer {{api_key}}\"}}\n\
         \x20   for attempt in range(3):\n\
         \x20       resp = self.session.get(self.base_url + \"/{a}\", headers=headers, timeout=timeout)\n\
         \x20       if resp.status_code == 200:\n\
         \x20           return resp.json()[\"{a}\"]\n\
         \x20   raise RuntimeError(f\"{f} failed after {{attempt}} attempts\")\n\n"
    ));
}

fn typescript(rng: &mut Rng, out: &mut String) {
    let f = ident(rng);
    let a = ident(rng);
    out.push_str(&format!(
        "export async function {f}({a}: string, opts: Options = {{}}): Promise<Result> {{\n\
         \x20 const token = process.env.SERVICE_TOKEN ?? '';\n\
         \x20 const res = await fetch(`${{opts.baseUrl}}/api/{a}`, {{ headers: {{ 'x-request-id': uuid() }} }});\n\
         \x20 if (!res.ok) throw new Error(`{f}: ${{res.status}} ${{res.statusText}}`);\n\
         \x20 return (await res.json()) as Result;\n\
         }}\n\n"
    ));
}

fn config(rng: &mut Rng, out: &mut String) {
    let uuid = format!(
        "{}-{}-4{}-a{}-{}",
        rng.chars(HEX, 8),
        rng.chars(HEX, 4),
        rng.chars(HEX, 3),
        rng.chars(HEX, 3),
        rng.chars(HEX, 12)
    );
    match rng.below(4) {
        0 => out.push_str(&format!(
            "server:\n  host: 0.0.0.0\n  port: {}\n  read_timeout: 30s\ndatabase:\n  url: postgres://app@db.internal:5432/app\n  password: ${{DB_PASSWORD}}\n  pool_size: {}\nfeature_flags:\n  new_{}: true\nrequest_id: {uuid}\n\n",
            8000 + rng.below(1000),
            rng.below(64),
            rng.pick(WORDS)
        )),
        1 => out.push_str(&format!(
            "[package]\nname = \"{}-{}\"\nversion = \"{}.{}.{}\"\nedition = \"2021\"\n\n[dependencies]\nserde = {{ version = \"1\", features = [\"derive\"] }}\ntokio = \"1.{}\"\n\n",
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.below(5),
            rng.below(30),
            rng.below(10),
            rng.below(40)
        )),
        2 => out.push_str(&format!(
            "    \"node_modules/{}\": {{\n      \"version\": \"{}.{}.{}\",\n      \"resolved\": \"https://registry.npmjs.org/{}/-/{}-1.0.0.tgz\",\n      \"integrity\": \"sha512-{}==\"\n    }},\n",
            rng.pick(WORDS),
            rng.below(9),
            rng.below(20),
            rng.below(9),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.chars(B64, 86)
        )),
        _ => out.push_str(&format!(
            "LOG_LEVEL=info\nAPI_BASE_URL=https://api.internal.test/v{}\nCACHE_TTL={}\nAPI_KEY=${{API_KEY}}\nCOMMIT_SHA={}\n\n",
            rng.below(3),
            rng.below(3600),
            rng.chars(HEX, 40)
        )),
    }
}

fn shell(rng: &mut Rng, out: &mut String) {
    let cmds = [
        format!(
            "git commit -m \"Fix {} in {}\"",
            rng.pick(WORDS),
            rng.pick(WORDS)
        ),
        format!(
            "git checkout -b feature/{}-{}",
            rng.pick(WORDS),
            rng.below(999)
        ),
        format!("cargo test --release {}", rng.pick(WORDS)),
        format!("cd ~/src/{}", rng.pick(WORDS)),
        "ls -la".to_owned(),
        format!("rg -n '{}' src/", rng.pick(WORDS)),
        format!("docker run --rm -p 8080:80 {}:latest", rng.pick(WORDS)),
        format!("kubectl -n {} get pods -o wide", rng.pick(WORDS)),
        format!("ssh deploy@10.0.{}.{}", rng.below(255), rng.below(255)),
        format!(
            "curl -s http://localhost:{}/health | jq .",
            3000 + rng.below(100)
        ),
        format!("git log --oneline {}..HEAD", rng.chars(HEX, 7)),
    ];
    for _ in 0..6 {
        out.push_str(&cmds[rng.below(cmds.len())]);
        out.push('\n');
    }
    out.push('\n');
}

fn prose(rng: &mut Rng, out: &mut String) {
    out.push_str("## ");
    out.push_str(rng.pick(WORDS));
    out.push_str("\n\n");
    for _ in 0..4 + rng.below(4) {
        out.push_str(rng.pick(PROSE));
        out.push(' ');
    }
    out.push_str(&format!(
        "Version {}.{} shipped on 2026-0{}-1{}.\n\n",
        rng.below(4),
        rng.below(20),
        1 + rng.below(9),
        rng.below(10)
    ));
}

/// A fake secret or piece of personal data in context, and the value that
/// must not survive redaction.
fn secret(rng: &mut Rng) -> (String, String) {
    let upper32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digits = b"0123456789";
    let (v, line) = match rng.below(12) {
        0 => {
            let v = format!("ghp_{}", rng.chars(ALNUM, 36));
            (v.clone(), format!("export GITHUB_TOKEN={v}\n"))
        }
        1 => {
            let v = format!("AKIA{}", rng.chars(upper32, 16));
            (v.clone(), format!("AWS_ACCESS_KEY_ID={v}\n"))
        }
        2 => {
            let v = rng.chars(ALNUM, 32);
            (v.clone(), format!("    api_key = \"{v}\"\n"))
        }
        3 => {
            let v = format!(
                "xoxb-{}-{}-{}",
                rng.chars(digits, 12),
                rng.chars(digits, 13),
                rng.chars(ALNUM, 24)
            );
            (v.clone(), format!("SLACK_BOT_TOKEN={v}\n"))
        }
        4 => {
            let v = format!("sk_live_{}", rng.chars(ALNUM, 24));
            (v.clone(), format!("stripe.api_key = '{v}'\n"))
        }
        5 => {
            let v = rng.chars(ALNUM, 16);
            (
                v.clone(),
                format!("DATABASE_URL=postgres://app:{v}@db.internal:5432/app\n"),
            )
        }
        6 => {
            let v = format!(
                "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
                rng.chars(ALNUM, 40),
                rng.chars(ALNUM, 43)
            );
            (v.clone(), format!("Authorization: Bearer {v}\n"))
        }
        7 => {
            let v = format!(
                "sk-proj-{}T3BlbkFJ{}",
                rng.chars(ALNUM, 40),
                rng.chars(ALNUM, 40)
            );
            (v.clone(), format!("OPENAI_API_KEY={v}\n"))
        }
        8 => {
            let v = format!("{}.{}@corp-mail.io", rng.pick(WORDS), rng.pick(WORDS));
            (v.clone(), format!("# contact: {v}\n"))
        }
        9 => {
            let v = rng.chars(ALNUM, 14);
            (v.clone(), format!("password: \"{v}\"\n"))
        }
        10 => {
            let v = format!("hf_{}", rng.chars(letters, 34));
            (v.clone(), format!("HF_TOKEN={v}\n"))
        }
        _ => {
            let body = rng.chars(B64, 70);
            (
                body.clone(),
                format!(
                    "-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                    rng.chars(B64, 70)
                ),
            )
        }
    };
    (line, v)
}

/// The corpus as documents, and the values planted (document index, value).
fn corpus() -> (Vec<String>, Vec<(usize, String)>) {
    let mut rng = Rng(0x00c4_d0a5_eed5);
    let mut docs = Vec::new();
    let mut total = 0;
    let mut planted = Vec::new();
    let mut since_secret = 0;
    while total < TARGET_BYTES {
        let size = 2048 + rng.below(62 * 1024);
        let mut doc = String::with_capacity(size + 1024);
        let kind = rng.below(5);
        while doc.len() < size {
            let before = doc.len();
            match kind {
                0 => rust(&mut rng, &mut doc),
                1 => {
                    if rng.below(2) == 0 {
                        python(&mut rng, &mut doc)
                    } else {
                        typescript(&mut rng, &mut doc)
                    }
                }
                2 => config(&mut rng, &mut doc),
                3 => shell(&mut rng, &mut doc),
                _ => prose(&mut rng, &mut doc),
            }
            since_secret += doc.len() - before;
            if since_secret >= SECRET_EVERY {
                since_secret = 0;
                let (line, value) = secret(&mut rng);
                doc.push_str(&line);
                planted.push((docs.len(), value));
            }
        }
        total += doc.len();
        docs.push(doc);
    }
    (docs, planted)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let t = Instant::now();
    let (docs, planted) = corpus();
    let bytes: usize = docs.iter().map(String::len).sum();
    println!(
        "corpus: {:.1} MB in {} documents, {} planted secrets/PII (generated in {:.2?})",
        bytes as f64 / 1e6,
        docs.len(),
        planted.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let redactor = Redactor::new(&Identity::none()).expect("rule table compiles");
    println!("redactor built in {:.2?}", t.elapsed());

    // Correctness first: no planted value may survive.
    let mut book = Placeholders::new();
    let redacted: Vec<String> = docs
        .iter()
        .map(|d| redactor.redact(d, &mut book).text)
        .collect();
    let leaked: Vec<&(usize, String)> = planted
        .iter()
        .filter(|(i, v)| !v.is_empty() && redacted[*i].contains(v.as_str()))
        .collect();
    println!("planted values left after redaction: {}", leaked.len());
    assert!(
        leaked.is_empty(),
        "leaked: {:?}",
        &leaked[..leaked.len().min(5)]
    );
    drop(redacted);

    let mut rates = Vec::new();
    let mut findings = 0;
    for round in 0..ROUNDS {
        let mut book = Placeholders::new();
        findings = 0;
        let t = Instant::now();
        for d in &docs {
            let r = redactor.redact(d, &mut book);
            findings += r.findings.len();
            black_box(&r.text);
        }
        let secs = t.elapsed().as_secs_f64();
        let rate = bytes as f64 / 1e6 / secs;
        println!(
            "round {}: {:.3}s {:.1} MB/s, {findings} findings",
            round + 1,
            secs,
            rate
        );
        rates.push(rate);
    }
    let mut scan_rates = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for d in &docs {
            black_box(redactor.scan(d));
        }
        scan_rates.push(bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
    }
    println!(
        "findings per round: {findings} (planted {}); scan only: median {:.1} MB/s",
        planted.len(),
        median(scan_rates)
    );
    let m = median(rates);
    println!("redact (scan + placeholders + output): median {m:.1} MB/s over {ROUNDS} rounds");
    println!("redact_mb_per_s={m:.0}");
}
