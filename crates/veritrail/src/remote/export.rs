//! `veritrail export`: the matching events as JSON Lines or CSV (resumable, with a
//! progress bar), or the log's bundle (optionally verified); and the offline `veritrail
//! verify --export`: the check and its report, as text or JSON.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, IsTerminal as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};
use veritrail_api::{BundleParams, ExportParams};
use veritrail_client::download::{Progress, RowFormat, Rows};
use veritrail_client::export::{ExportReport, ExportVerifyOptions, verify_export};
use veritrail_client::{Client, ClientError};
use veritrail_core::note::NoteVerifier;

use super::Connection;
use super::output::{Out, plural};

/// `veritrail export`: downloads the bundle (the records matching `params`' filters, each
/// with its proof, when any is given) to `path`; with `verifier_key` (given with
/// `--verify`), checks it against that pinned key, parsed before anything is downloaded.
pub(super) async fn export(
    connection: &Connection,
    params: &BundleParams,
    path: &Path,
    verifier_key: Option<&str>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let verifier = verifier_key
        .map(|key| NoteVerifier::parse(key).context("the verifier key does not parse"))
        .transpose()?;
    let n_bytes = download_export(&connection.client()?, params, path).await?;
    match verifier {
        Some(verifier) => verify_export_file(path, &verifier, json, out),
        None => {
            out.line(&format!("wrote {n_bytes} bytes to {}", path.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Downloads the export to a file beside `path`, then renames it into place, so `path`
/// never holds half a bundle.
async fn download_export(
    client: &Client,
    params: &BundleParams,
    path: &Path,
) -> anyhow::Result<u64> {
    let partial = partial_path(path);
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut writer = BufWriter::new(file);
    let result = client.export_bundle(params, &mut writer).await;
    let n_bytes = match result {
        Ok(n_bytes) => n_bytes,
        Err(err) => {
            drop(writer);
            let _ = std::fs::remove_file(&partial);
            return Err(err.into());
        }
    };
    writer
        .into_inner()
        .map_err(|err| err.into_error())
        .and_then(|file| file.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    Ok(n_bytes)
}

/// Attempts in a row that may end without a new row before the export gives up.
const EXPORT_ATTEMPTS: u32 = 5;

/// `veritrail export --format jsonl|csv|ocsf`: downloads the matching events to `OUT.partial`,
/// continuing after the last whole row when the connection is cut, and renames it to `path`
/// once complete. With `resume`, an earlier `OUT.partial` is continued instead of replaced.
pub(super) async fn export_events(
    client: &Client,
    mut params: ExportParams,
    path: &Path,
    resume: bool,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let partial = partial_path(path);
    let format = RowFormat::of(&params);
    let mut progress = Progress::default();
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&partial)
        .with_context(|| format!("cannot open {}", partial.display()))?;
    if resume {
        // The whole rows already there, and the seq of the last: the rest is cut off.
        let mut rows = Rows::new(format);
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut &file, &mut buf)
                .with_context(|| format!("cannot read {}", partial.display()))?;
            if n == 0 {
                break;
            }
            rows.feed(&buf[..n], &mut std::io::sink(), &mut progress)
                .with_context(|| {
                    format!("{} is not an export of this format", partial.display())
                })?;
        }
        if let Some(seq) = progress.last_seq {
            eprintln!(
                "continuing {} after seq {seq} ({})",
                partial.display(),
                plural(progress.events, "event")
            );
        }
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "exporting {bar:40} seq {pos}/{len} {msg} ({elapsed})",
            )
            .expect("static template"),
        );
        bar
    });
    let mut failures = 0;
    loop {
        if progress.last_seq.is_none() {
            // Nothing whole yet (at most a CSV header row): start the file again.
            progress = Progress::default();
        }
        file.set_len(progress.bytes)
            .and_then(|()| file.seek(SeekFrom::Start(progress.bytes)).map(drop))
            .with_context(|| format!("cannot write {}", partial.display()))?;
        params.after_seq = progress.last_seq.map(|seq| seq.to_string());
        let before = progress.last_seq;
        let mut writer = BufWriter::with_capacity(1 << 20, &file);
        let result = client
            .export_events(&params, &mut writer, &mut progress, |progress| {
                if let Some(bar) = &bar {
                    bar.set_length(progress.indexed_size);
                    bar.set_position(progress.last_seq.map_or(0, |seq| seq + 1));
                    bar.set_message(format!(
                        "{}, {:.1} MiB",
                        plural(progress.events, "event"),
                        progress.bytes as f64 / 1_048_576.0
                    ));
                }
            })
            .await;
        // Whole rows only reached the writer: keep them whatever happened.
        writer
            .into_inner()
            .map_err(|err| err.into_error())
            .with_context(|| format!("cannot write {}", partial.display()))?;
        match result {
            Ok(()) => break,
            Err(err @ (ClientError::Transport(_) | ClientError::Download(_))) => {
                failures = if progress.last_seq == before {
                    failures + 1
                } else {
                    1
                };
                if failures >= EXPORT_ATTEMPTS {
                    if let Some(bar) = &bar {
                        bar.abandon();
                    }
                    return Err(anyhow::Error::new(err).context(format!(
                        "the export stopped after {}; {} keeps what arrived: run the same command with --resume to continue",
                        plural(progress.events, "event"),
                        partial.display()
                    )));
                }
                eprintln!(
                    "the connection was cut after {}; continuing ({err})",
                    plural(progress.events, "event")
                );
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failures))).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    file.sync_all()
        .with_context(|| format!("cannot write {}", partial.display()))?;
    drop(file);
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    if json {
        out.line(
            &json!({
                "path": path.display().to_string(),
                "events": progress.events,
                "bytes": progress.bytes,
                "last_seq": progress.last_seq,
                "indexed_size": progress.indexed_size,
            })
            .to_string(),
        )?;
    } else {
        out.line(&format!(
            "wrote {} ({} bytes) to {}",
            plural(progress.events, "event"),
            progress.bytes,
            path.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a download is written until it is complete: `path` with `.partial` appended.
fn partial_path(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

/// `veritrail verify --export FILE --key KEY`: verifies an export bundle offline against the
/// pinned verifier key. Exit 0 when it verifies, 1 when it has faults; `Err` (exit 2) when
/// the key does not parse or the file cannot be opened.
pub(crate) fn verify_export_command(
    path: &Path,
    key: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let verifier = NoteVerifier::parse(key.trim()).context("the verifier key does not parse")?;
    verify_export_file(path, &verifier, json, &mut Out::new())
}

fn verify_export_file(
    path: &Path,
    verifier: &NoteVerifier,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let report = verify_export(
        BufReader::with_capacity(1 << 20, file),
        verifier,
        &ExportVerifyOptions::default(),
    );
    if json {
        out.line(&export_report_json(&report).to_string())?;
    } else {
        out.line(&export_report_text(path, &report))?;
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn export_report_text(path: &Path, report: &ExportReport) -> String {
    let mut out = String::new();
    for fault in &report.faults {
        out.push_str(&format!("FAULT {fault}\n"));
    }
    if report.n_faults_dropped > 0 {
        out.push_str(&format!(
            "... and {} more faults\n",
            report.n_faults_dropped
        ));
    }
    if report.is_ok()
        && let Some(filters) = &report.filters
    {
        out.push_str(&format!(
            "OK: {} holds {} of tenant {} matching {filters}, each proven in the tree of {} records signed by the pinned key",
            path.display(),
            plural(report.n_records, "record"),
            report.tenant.as_deref().unwrap_or("?"),
            report.checkpoint_size.unwrap_or(0),
        ));
    } else if report.is_ok() {
        let b64 = base64::engine::general_purpose::STANDARD;
        out.push_str(&format!(
            "OK: {} holds {} of tenant {}, signed by the pinned key (root {})",
            path.display(),
            plural(report.n_records, "record"),
            report.tenant.as_deref().unwrap_or("?"),
            report
                .root
                .map_or_else(|| "-".into(), |root| b64.encode(root)),
        ));
    } else {
        out.push_str(&format!(
            "FAILED: {} faults in {}",
            report.faults.len() as u64 + report.n_faults_dropped,
            path.display()
        ));
    }
    out
}

fn export_report_json(report: &ExportReport) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "ok": report.is_ok(),
        "tenant": report.tenant,
        "origin": report.origin,
        "filters": report.filters,
        "records": report.n_records,
        "checkpoint_size": report.checkpoint_size,
        "root": report.root.map(|root| b64.encode(root)),
        "checkpoint": report.checkpoint,
        "faults": report.faults.iter().map(|fault| json!({
            "kind": format!("{:?}", fault.kind),
            "seq": fault.seq,
            "line": fault.line,
            "detail": fault.detail,
        })).collect::<Vec<_>>(),
        "faults_dropped": report.n_faults_dropped,
    })
}
