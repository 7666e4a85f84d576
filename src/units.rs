//! Numbers for people: counts with thousands separators, byte sizes in
//! binary units, and durations, as `candor stats`, `candor status` and the
//! HTML report print them. JSON output never goes through here.

/// 1234567 -> "1,234,567".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed count (negative values only come from damaged rows).
pub fn count_i(n: i64) -> String {
    if n < 0 {
        format!("-{}", count(n.unsigned_abs()))
    } else {
        count(n as u64)
    }
}

/// 1536 -> "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration to the second at most two units wide: "3h 12m", "45s",
/// "2d 4h"; under a second, "0.4s".
pub fn duration_ns(ns: i64) -> String {
    let ns = ns.max(0);
    if ns < 1_000_000_000 {
        return if ns == 0 {
            "0s".to_owned()
        } else {
            format!("{:.1}s", ns as f64 / 1e9)
        };
    }
    let s = ns / 1_000_000_000;
    let (d, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    let parts = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")];
    let first = parts.iter().position(|p| p.0 > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .take(2)
        .filter(|p| p.0 > 0 || first == 3)
        .map(|(n, u)| format!("{n}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_these() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count_i(-1_234), "-1,234");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration_ns(0), "0s");
        assert_eq!(duration_ns(400_000_000), "0.4s");
        assert_eq!(duration_ns(45 * 1_000_000_000), "45s");
        assert_eq!(
            duration_ns((3 * 3600 + 12 * 60 + 5) * 1_000_000_000),
            "3h 12m"
        );
        assert_eq!(
            duration_ns((2 * 86_400 + 4 * 3600) * 1_000_000_000),
            "2d 4h"
        );
        assert_eq!(duration_ns(3600 * 1_000_000_000), "1h");
    }
}
