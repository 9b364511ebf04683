//! `veritrail-bench report`: the Markdown tables of an HTTP benchmark run, veritrail beside
//! PostgreSQL, with the ratios and the bars each phase must meet.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use crate::load::PhaseResult;

const VERITRAIL: &str = "veritrail";
const POSTGRES: &str = "postgresql";

/// Ingest phases: key, bar in events/s.
const INGEST: [(&str, f64); 2] = [("ingest_batch", 100_000.0), ("ingest_single", 20_000.0)];
/// Search phases: key, bar on p99 in ms (`categories` is the category drop-down's).
const SEARCH: [(&str, Option<f64>); 5] = [
    ("search_filtered", Some(10.0)),
    ("search_text_1", Some(50.0)),
    ("search_text_2", Some(50.0)),
    ("count_by_family", None),
    ("categories", Some(20.0)),
];
const RATIO_BAR: f64 = 3.0;
/// The Activity page's bar: server time p95, in ms, of every page kind.
const ACTIVITY_BAR_MS: f64 = 150.0;
/// Export phases: key, bar in events/s for the whole log.
const EXPORTS: [(&str, f64); 2] = [("export_jsonl", 150_000.0), ("export_csv", 150_000.0)];
/// The 1% slice's bar: time to its first record, p99, in ms.
const SLICE_FIRST_BAR_MS: f64 = 50.0;

pub(crate) fn print(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut by_system: BTreeMap<String, BTreeMap<String, PhaseResult>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file)?;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let result: PhaseResult = serde_json::from_str(line)?;
            by_system
                .entry(result.system.clone())
                .or_default()
                .insert(result.key.clone(), result);
        }
    }
    let empty = BTreeMap::new();
    let vt = by_system.get(VERITRAIL).unwrap_or(&empty);
    let pg = by_system.get(POSTGRES).unwrap_or(&empty);
    let mut out = String::new();
    let mut verdicts = Vec::new();

    out.push_str("Set-up (not measured against a bar):\n\n| system | preload | events | s | events/s | client CPU s | server CPU s | notes |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (system, results) in [(VERITRAIL, vt), (POSTGRES, pg)] {
        if let Some(r) = results.get("preload") {
            let _ = writeln!(
                out,
                "| {system} | {} | {} | {:.1} | {} | {:.1} | {:.1} | {} |",
                r.name,
                thousands(r.events as f64),
                r.secs,
                thousands(r.events_per_s()),
                r.client_cpu_s,
                r.server_cpu_s,
                r.note
            );
        }
    }

    out.push_str("\nIngest (durable acknowledgements):\n\n| workload | conn | veritrail events/s | veritrail latency p50 / p99 / max ms | PostgreSQL events/s | PostgreSQL latency p50 / p99 / max ms | veritrail / PostgreSQL | bar |\n| --- | ---: | ---: | --- | ---: | --- | ---: | --- |\n");
    for (key, bar) in INGEST {
        let (v, p) = (vt.get(key), pg.get(key));
        let Some(any) = v.or(p) else { continue };
        let ratio = match (v, p) {
            (Some(v), Some(p)) => v.events_per_s() / p.events_per_s().max(1e-9),
            _ => f64::NAN,
        };
        if let Some(v) = v {
            verdicts.push(verdict(
                &format!(
                    "{}: {} events/s >= {}",
                    any.name,
                    thousands(v.events_per_s()),
                    thousands(bar)
                ),
                v.events_per_s() >= bar && v.errors == 0,
            ));
        }
        if ratio.is_finite() {
            verdicts.push(verdict(
                &format!("{}: {ratio:.2}x PostgreSQL >= {RATIO_BAR}x", any.name),
                ratio >= RATIO_BAR,
            ));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | >= {} events/s, >= {RATIO_BAR}x |",
            any.name,
            any.connections,
            v.map_or("-".to_owned(), |r| thousands(r.events_per_s())),
            v.map_or("-".to_owned(), latencies),
            p.map_or("-".to_owned(), |r| thousands(r.events_per_s())),
            p.map_or("-".to_owned(), latencies),
            if ratio.is_finite() {
                format!("{ratio:.2}x")
            } else {
                "-".to_owned()
            },
            thousands(bar),
        );
    }

    out.push_str("\nSearch (first pages of 50 records; counts):\n\n| query | conn | veritrail p50 / p90 / p99 / max ms | veritrail queries/s | PostgreSQL p50 / p90 / p99 / max ms | PostgreSQL queries/s | results/query vt / pg | p99 PostgreSQL / veritrail | queries/s veritrail / PostgreSQL | bar |\n| --- | ---: | --- | ---: | --- | ---: | --- | ---: | ---: | --- |\n");
    for (key, bar) in SEARCH {
        let (v, p) = (vt.get(key), pg.get(key));
        let Some(any) = v.or(p) else { continue };
        let (p99_ratio, qps_ratio) = match (v, p) {
            (Some(v), Some(p)) => (
                p.p99_ms / v.p99_ms.max(1e-9),
                v.requests_per_s() / p.requests_per_s().max(1e-9),
            ),
            _ => (f64::NAN, f64::NAN),
        };
        if let (Some(v), Some(bar)) = (v, bar) {
            verdicts.push(verdict(
                &format!("{}: p99 {:.2} ms <= {bar} ms", any.name, v.p99_ms),
                v.p99_ms <= bar && v.errors == 0,
            ));
        }
        if p99_ratio.is_finite() {
            verdicts.push(verdict(
                &format!(
                    "{}: PostgreSQL's p99 / veritrail's = {p99_ratio:.2}x, veritrail's queries/s / PostgreSQL's = {qps_ratio:.2}x (both >= {RATIO_BAR}x)",
                    any.name
                ),
                p99_ratio >= RATIO_BAR && qps_ratio >= RATIO_BAR,
            ));
        }
        let per_query = |r: &PhaseResult| r.events as f64 / r.requests.max(1) as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} |",
            any.name,
            any.connections,
            v.map_or("-".to_owned(), latencies4),
            v.map_or("-".to_owned(), |r| thousands(r.requests_per_s())),
            p.map_or("-".to_owned(), latencies4),
            p.map_or("-".to_owned(), |r| thousands(r.requests_per_s())),
            v.map_or("-".to_owned(), |r| format!("{:.1}", per_query(r))),
            p.map_or("-".to_owned(), |r| format!("{:.1}", per_query(r))),
            ratio_text(p99_ratio),
            ratio_text(qps_ratio),
            match bar {
                Some(bar) => format!("p99 <= {bar} ms, >= {RATIO_BAR}x"),
                None => format!(">= {RATIO_BAR}x"),
            },
        );
    }

    let activity: Vec<&PhaseResult> = crate::activity::PageKind::ALL
        .iter()
        .filter_map(|kind| vt.get(kind.key()))
        .collect();
    if !activity.is_empty() {
        out.push_str("\nActivity page (signed-in browsers, one request at a time each; server time from the `Server-Timing` header, client time adds loopback HTTP):\n\n| page | conn | pages | rows/page | server p50 / p95 / p99 / max ms | client p50 / p90 / p99 / max ms | pages/s | bar |\n| --- | ---: | ---: | ---: | --- | --- | ---: | --- |\n");
        for r in activity {
            let server = r.server_ms.unwrap_or([f64::NAN; 4]);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.2} / {:.2} / {:.2} / {:.2} | {} | {:.0} | p95 < {ACTIVITY_BAR_MS} ms |",
                r.name,
                r.connections,
                thousands(r.requests as f64),
                r.events as f64 / r.requests.max(1) as f64,
                server[0],
                server[1],
                server[2],
                server[3],
                latencies4(r),
                r.requests_per_s(),
            );
            verdicts.push(verdict(
                &format!(
                    "{}: server p95 {:.2} ms < {ACTIVITY_BAR_MS} ms",
                    r.name, server[1]
                ),
                server[1] < ACTIVITY_BAR_MS && r.errors == 0,
            ));
        }
    }

    if EXPORTS.iter().any(|(key, _)| vt.contains_key(*key)) || vt.contains_key("export_slice_first")
    {
        out.push_str("\nExports (veritrail over HTTP, one connection):\n\n| export | events | s | events/s | first record p50 / p99 ms | notes | bar |\n| --- | ---: | ---: | ---: | --- | --- | --- |\n");
        for (key, bar) in EXPORTS {
            if let Some(r) = vt.get(key) {
                let ok = r.events_per_s() >= bar;
                let line = verdict(
                    &format!(
                        "{}: {} events/s (bar >= {})",
                        r.name,
                        thousands(r.events_per_s()),
                        thousands(bar)
                    ),
                    ok,
                );
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} | {} | - | {} | {} |",
                    r.name,
                    thousands(r.events as f64),
                    r.secs,
                    thousands(r.events_per_s()),
                    r.note,
                    line
                );
                verdicts.push(line);
            }
        }
        if let Some(r) = vt.get("export_slice_first") {
            let ok = r.p99_ms <= SLICE_FIRST_BAR_MS;
            let line = verdict(
                &format!(
                    "{}: p99 {:.1} ms (bar <= {SLICE_FIRST_BAR_MS} ms)",
                    r.name, r.p99_ms
                ),
                ok,
            );
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {} | {:.1} / {:.1} | {} | {} |",
                r.name,
                thousands(r.events as f64),
                r.secs,
                thousands(r.events_per_s()),
                r.p50_ms,
                r.p99_ms,
                r.note,
                line
            );
            verdicts.push(line);
        }
    }

    out.push_str("\nCPU seconds during each phase (client = this load generator, server = veritrail or every PostgreSQL process), errors, server notes:\n\n| system | phase | s | requests | client CPU s | server CPU s | errors | notes |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (system, results) in [(VERITRAIL, vt), (POSTGRES, pg)] {
        for key in INGEST
            .iter()
            .map(|(key, _)| *key)
            .chain(SEARCH.iter().map(|(key, _)| *key))
            .chain(crate::activity::PageKind::ALL.iter().map(|kind| kind.key()))
        {
            if let Some(r) = results.get(key) {
                let _ = writeln!(
                    out,
                    "| {system} | {} | {:.1} | {} | {:.1} | {:.1} | {} | {} |",
                    r.name,
                    r.secs,
                    thousands(r.requests as f64),
                    r.client_cpu_s,
                    r.server_cpu_s,
                    r.errors,
                    r.note
                );
            }
        }
    }

    out.push_str("\nBars:\n\n");
    for line in &verdicts {
        let _ = writeln!(out, "- {line}");
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    Ok(())
}

fn verdict(what: &str, ok: bool) -> String {
    format!("{} {what}", if ok { "PASS" } else { "MISS" })
}

fn ratio_text(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.1}x")
    } else {
        "-".to_owned()
    }
}

fn latencies(r: &PhaseResult) -> String {
    format!("{:.2} / {:.2} / {:.2}", r.p50_ms, r.p99_ms, r.max_ms)
}

fn latencies4(r: &PhaseResult) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} / {:.2}",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
    )
}

/// `123456.7` as `123,457`.
fn thousands(value: f64) -> String {
    let rounded = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in rounded.chars().enumerate() {
        if i > 0 && (rounded.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234.0), "1,234");
        assert_eq!(thousands(10_000_000.0), "10,000,000");
    }
}
