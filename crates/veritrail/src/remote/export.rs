//! `veritrail export` (download the log's bundle, optionally verify it) and the offline
//! `veritrail verify --export`: the check and its report, as text or JSON.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};
use veritrail_client::Client;
use veritrail_client::export::{ExportReport, ExportVerifyOptions, verify_export};
use veritrail_core::note::NoteVerifier;

use super::Connection;
use super::output::{Out, plural};

/// `veritrail export`: downloads the bundle to `path`; with `verifier_key` (given with
/// `--verify`), checks it against that pinned key, parsed before anything is downloaded.
pub(super) async fn export(
    connection: &Connection,
    path: &Path,
    verifier_key: Option<&str>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let verifier = verifier_key
        .map(|key| NoteVerifier::parse(key).context("the verifier key does not parse"))
        .transpose()?;
    let n_bytes = download_export(&connection.client()?, path).await?;
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
async fn download_export(client: &Client, path: &Path) -> anyhow::Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut writer = BufWriter::new(file);
    let result = client.export(&mut writer).await;
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
    if report.is_ok() {
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
