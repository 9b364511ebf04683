//! `veritrail send`: reads events (a JSON array or JSON lines), sends them in batches and
//! prints a receipt or a rejection per event.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::json;
use veritrail_api::EventInput;
use veritrail_client::{BatchReport, Batcher, BatcherOptions, Client, IngestOptions, Wait};

use super::output::{Out, plural};

/// How `send` batches: `batch_size` events a request, answered once durable or, with
/// `--searchable`, once search finds them.
pub(super) fn options(batch_size: usize, searchable: bool) -> BatcherOptions {
    BatcherOptions {
        max_events: batch_size,
        ingest: IngestOptions {
            wait: if searchable {
                Wait::Searchable
            } else {
                Wait::Durable
            },
            proof: false,
        },
        ..BatcherOptions::default()
    }
}

/// Reads events and sends them through a [`Batcher`], printing receipts as batches
/// complete.
pub(super) async fn send(
    client: &Client,
    options: BatcherOptions,
    file: Option<&Path>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead> = match file {
        Some(path) if path != Path::new("-") => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        _ => Box::new(BufReader::new(std::io::stdin())),
    };
    let mut batcher = Batcher::new(client.clone(), options);
    let mut totals = SendTotals::default();
    for event in read_events(reader)? {
        batcher.push(event?).await?;
        print_batch_report(&batcher.take_report(), json, &mut totals, out)?;
    }
    let report = batcher.finish().await?;
    print_batch_report(&report, json, &mut totals, out)?;
    if !json {
        let mut summary = format!("{} stored", plural(totals.stored, "event"));
        if totals.duplicates > 0 {
            summary.push_str(&format!(" ({} already were)", totals.duplicates));
        }
        if totals.rejected > 0 {
            summary.push_str(&format!(", {} rejected", totals.rejected));
        }
        if let Some(tree_size) = totals.tree_size {
            summary.push_str(&format!("; the log now holds {tree_size}"));
        }
        out.line(&summary)?;
    }
    Ok(if totals.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Default)]
struct SendTotals {
    stored: u64,
    duplicates: u64,
    rejected: u64,
    tree_size: Option<u64>,
}

/// Prints receipts and rejections in push order.
fn print_batch_report(
    report: &BatchReport,
    json: bool,
    totals: &mut SendTotals,
    out: &mut Out,
) -> anyhow::Result<()> {
    let mut receipts = report.receipts.iter().peekable();
    let mut rejected = report.rejected.iter().peekable();
    loop {
        let take_receipt = match (receipts.peek(), rejected.peek()) {
            (Some(receipt), Some(rejection)) => receipt.index < rejection.index,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_receipt {
            let Some(receipt) = receipts.next() else {
                break;
            };
            totals.stored += 1;
            totals.duplicates += u64::from(receipt.receipt.duplicate);
            if json {
                out.line(
                    &json!({
                        "index": receipt.index,
                        "tenant": receipt.receipt.tenant,
                        "id": receipt.receipt.id,
                        "seq": receipt.receipt.seq,
                        "leaf_hash": receipt.receipt.leaf_hash,
                        "duplicate": receipt.receipt.duplicate,
                    })
                    .to_string(),
                )?;
            } else {
                out.line(&format!(
                    "event {:>6}  {}seq {:>8}  id {}{}",
                    receipt.index,
                    receipt
                        .receipt
                        .tenant
                        .as_deref()
                        .map(|tenant| format!("tenant {tenant}  "))
                        .unwrap_or_default(),
                    receipt.receipt.seq,
                    receipt.receipt.id.as_deref().unwrap_or("-"),
                    if receipt.receipt.duplicate {
                        "  (already stored)"
                    } else {
                        ""
                    }
                ))?;
            }
        } else {
            let Some(rejection) = rejected.next() else {
                break;
            };
            totals.rejected += 1;
            if json {
                out.line(
                    &json!({
                        "index": rejection.index,
                        "id": rejection.id,
                        "rejected": true,
                        "errors": rejection.errors,
                    })
                    .to_string(),
                )?;
            } else {
                let errors: Vec<String> = rejection
                    .errors
                    .iter()
                    .map(|field| format!("{}: {} ({})", field.field, field.message, field.code))
                    .collect();
                out.line(&format!(
                    "event {:>6}  REJECTED  {}",
                    rejection.index,
                    errors.join("; ")
                ))?;
            }
        }
    }
    if report.tree_size.is_some() {
        totals.tree_size = report.tree_size;
    }
    Ok(())
}

/// The events of `reader`: a JSON array, or a sequence of JSON objects (one event, or one
/// per line). Objects are read one at a time, so JSON lines of any length stream.
fn read_events(
    mut reader: Box<dyn BufRead>,
) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<EventInput>>>> {
    let first = loop {
        let buf = reader.fill_buf().context("cannot read the events")?;
        match buf.iter().position(|byte| !byte.is_ascii_whitespace()) {
            Some(pos) => {
                let byte = buf[pos];
                reader.consume(pos);
                break Some(byte);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    match first {
        None => bail!("no events in the input"),
        Some(b'[') => {
            let events: Vec<EventInput> = serde_json::from_reader(reader)
                .context("the JSON array of events does not parse")?;
            Ok(Box::new(events.into_iter().map(Ok)))
        }
        Some(_) => {
            let stream = serde_json::Deserializer::from_reader(reader).into_iter::<EventInput>();
            Ok(Box::new(stream.enumerate().map(|(index, event)| {
                event.with_context(|| format!("event {index} of the input does not parse"))
            })))
        }
    }
}
