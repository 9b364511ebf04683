//! `veritrail`: the audit log service's command-line tool.
//!
//! # Layout
//!
//! - This file: the flags, and the commands on a local data directory (below).
//! - `serve`: `serve` and `reindex`.
//! - `remote`: the client commands, over the HTTP API, and `verify --export`.
//!
//! # Commands on a data directory
//!
//! - `init`: create a data directory with its log signing key.
//! - `key`: print the verifier key that checks this data directory's checkpoints.
//! - `append`: append events (JSON) to a tenant's log in a local data directory.
//! - `verify`: check a data directory offline against a pinned verifier key.
//! - `serve`: run the HTTP service ([`veritrail_server`]).
//! - `reindex`: rebuild the search index of a stopped server's data directory.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod remote;
mod serve;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Parser, Subcommand};
use veritrail_core::event::{Event, EventInput, TenantId};
use veritrail_core::note::NoteVerifier;
use veritrail_ledger::verify::{self, Report, VerifyOptions};
use veritrail_ledger::{EmbeddedOptions, EmbeddedStore, Ledger, LedgerConfig, RemovalScope, keys};

// The service allocates many small, short-lived objects per request and per event; glibc's
// malloc was about 15% of the server's CPU under ingest (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// veritrail: a verifiable, multi-tenant audit log.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct DataDirArgs {
    /// The data directory.
    #[arg(long, env = "VERITRAIL_DATA_DIR", default_value = "veritrail-data")]
    data_dir: PathBuf,
    /// Deployment name: names the signing key and prefixes every checkpoint origin.
    #[arg(long, env = "VERITRAIL_ORIGIN", default_value = "veritrail.local")]
    origin: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the audit log service (HTTP API, search, proofs) on this machine.
    ///
    /// With no configuration it keeps its data in ./veritrail-data and listens on
    /// 127.0.0.1:8080. The first start prints the server-admin key, once.
    Serve {
        /// A TOML configuration file (see veritrail.example.toml); VERITRAIL_* environment
        /// variables override it.
        #[arg(long, env = "VERITRAIL_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, like 127.0.0.1:8080 (over the file and VERITRAIL_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// The data directory (over the file and VERITRAIL_DATA_DIR).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Also create a demo tenant with a viewer key and a week of sample events.
        #[arg(long)]
        demo: bool,
    },
    /// Rebuild the search index from the ledger (stop the server first).
    Reindex {
        /// A TOML configuration file; VERITRAIL_* environment variables override it.
        #[arg(long, env = "VERITRAIL_CONFIG")]
        config: Option<PathBuf>,
        /// The data directory (over the file and VERITRAIL_DATA_DIR).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Create the data directory and its log signing key (done on first use anyway).
    Init {
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Print the verifier key (`name+keyid+key`) to pin for offline verification.
    Key {
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Append events to a tenant's log in a local data directory (no server).
    ///
    /// Reads one JSON event, a JSON array of events, or one event per line, from FILE or
    /// standard input, and prints a receipt per event once they are durable.
    Append {
        #[command(flatten)]
        data: DataDirArgs,
        /// The tenant whose log gets the events.
        #[arg(long)]
        tenant: String,
        /// Print receipts as JSON lines.
        #[arg(long)]
        json: bool,
        /// File of events; `-` or nothing for standard input.
        file: Option<PathBuf>,
    },
    /// Verify a data directory offline: every record, leaf hash, seq and signed checkpoint.
    ///
    /// Exits 0 when everything verifies, 1 when anything is wrong (each fault is listed
    /// with its tenant, seq and kind), 2 when the directory cannot be read.
    Verify {
        /// The data directory.
        #[arg(long, env = "VERITRAIL_DATA_DIR", default_value = "veritrail-data")]
        data_dir: PathBuf,
        /// The pinned verifier key string, as printed by `veritrail key`.
        #[arg(long, env = "VERITRAIL_VERIFIER_KEY", conflicts_with = "key_file")]
        key: Option<String>,
        /// A file holding the verifier key string.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also decode every record, checking it is a valid canonical record (slower).
        #[arg(long)]
        deep: bool,
        /// A file holding a signed checkpoint you trust (from a receipt, an earlier
        /// verification): the log must contain it. Catches a log cut at its end. Repeatable.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Verify this export bundle (`veritrail export --out FILE`) instead of a data
        /// directory.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["deep", "checkpoints"])]
        export: Option<PathBuf>,
    },
    #[command(flatten)]
    Remote(Box<remote::RemoteCommand>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service logs what it does; the other commands only what goes wrong.
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VERITRAIL_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            demo,
        } => serve::serve(
            &serve::Settings {
                config,
                listen,
                data_dir,
            },
            demo,
        ),
        Command::Reindex { config, data_dir } => serve::reindex(&serve::Settings {
            config,
            listen: None,
            data_dir,
        }),
        Command::Remote(command) => remote::run(*command),
        Command::Init { data } => {
            let signer = load_signer(&data)?;
            drop(open_store(&data.data_dir)?);
            say(&format!(
                "data directory {} is ready\nverifier key: {}",
                data.data_dir.display(),
                signer.verifier().to_vkey_string()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Key { data } => {
            let path = key_path(&data.data_dir);
            let vkey = keys::verifier_key(&path).with_context(|| {
                format!(
                    "no log key yet: run `veritrail init --data-dir {}`",
                    data.data_dir.display()
                )
            })?;
            say(&vkey);
            Ok(ExitCode::SUCCESS)
        }
        Command::Append {
            data,
            tenant,
            json,
            file,
        } => append(&data, &tenant, json, file.as_deref()),
        Command::Verify {
            data_dir,
            key,
            key_file,
            json,
            deep,
            checkpoints,
            export,
        } => {
            let key = match (key, key_file) {
                (Some(key), _) => key,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .trim()
                    .to_owned(),
                (None, None) => bail!(
                    "give the pinned verifier key with --key or --key-file (print it with `veritrail key`)"
                ),
            };
            if let Some(path) = export {
                return remote::verify_export_command(&path, &key, json);
            }
            let verifier = NoteVerifier::parse(&key).context("the verifier key does not parse")?;
            verify_data_dir(
                &data_dir,
                &verifier,
                &VerifyOptions {
                    decode_records: deep,
                    trusted_checkpoints: checkpoints
                        .iter()
                        .map(|path| {
                            std::fs::read_to_string(path)
                                .with_context(|| format!("cannot read {}", path.display()))
                        })
                        .collect::<anyhow::Result<_>>()?,
                },
                json,
            )
        }
    }
}

fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("log-key")
}

fn load_signer(data: &DataDirArgs) -> anyhow::Result<veritrail_core::note::NoteSigner> {
    Ok(keys::load_or_create_signer(
        &key_path(&data.data_dir),
        &data.origin,
    )?)
}

fn open_store(data_dir: &Path) -> anyhow::Result<EmbeddedStore> {
    EmbeddedStore::open(&data_dir.join("ledger"), EmbeddedOptions::default())
        .with_context(|| format!("cannot open the ledger in {}", data_dir.display()))
}

fn append(
    data: &DataDirArgs,
    tenant: &str,
    json: bool,
    file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::parse(tenant).map_err(|err| anyhow::anyhow!("bad tenant id: {err}"))?;
    let mut text = String::new();
    match file {
        Some(path) if path != Path::new("-") => {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
        }
    }
    let inputs = parse_event_inputs(&text)?;
    let mut events = Vec::with_capacity(inputs.len());
    let mut invalid = Vec::new();
    for (idx, input) in inputs.into_iter().enumerate() {
        match Event::parse(input) {
            Ok(event) => events.push(event),
            Err(err) => {
                for field in &err.errors {
                    invalid.push(format!(
                        "event {idx}: {}: {} ({})",
                        field.field, field.message, field.code
                    ));
                }
            }
        }
    }
    if !invalid.is_empty() {
        bail!(
            "nothing was appended; invalid events:\n  {}",
            invalid.join("\n  ")
        );
    }
    let signer = load_signer(data)?;
    let store = Arc::new(open_store(&data.data_dir)?);
    let config = LedgerConfig {
        ..LedgerConfig::default()
    };
    let ledger = Ledger::start(store.clone(), signer, config).context("cannot start the ledger")?;
    // Large files go in requests of a few thousand events; each is durable on return.
    let mut receipts = Vec::with_capacity(events.len());
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<Event> = events.by_ref().take(APPEND_CHUNK).collect();
        receipts.extend(ledger.append_blocking(tenant.clone(), chunk)?);
    }
    ledger.shutdown();
    store.sync().context("cannot sync the ledger")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    for receipt in &receipts {
        if json {
            let line = serde_json::json!({
                "tenant": tenant.as_str(),
                "seq": receipt.seq,
                "leaf_hash": b64.encode(receipt.leaf_hash),
                "duplicate": receipt.duplicate,
                "checkpoint": &*receipt.checkpoint,
            });
            out.push_str(&format!("{line}\n"));
        } else {
            out.push_str(&format!(
                "{tenant}  seq {:>8}  leaf {}{}\n",
                receipt.seq,
                b64.encode(receipt.leaf_hash),
                if receipt.duplicate {
                    "  (already stored)"
                } else {
                    ""
                }
            ));
        }
    }
    if !json && let Some(last) = receipts.last() {
        out.push_str(&format!("\nsigned checkpoint:\n{}", last.checkpoint));
    }
    say(out.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// Events per append request when `veritrail append` reads a large file.
const APPEND_CHUNK: usize = 5_000;

/// One JSON event, a JSON array of events, or JSON lines.
fn parse_event_inputs(text: &str) -> anyhow::Result<Vec<EventInput>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).context("the JSON array of events does not parse");
    }
    if let Ok(one) = serde_json::from_str::<EventInput>(trimmed) {
        return Ok(vec![one]);
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(idx, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("line {} is not a JSON event", idx + 1))
        })
        .collect()
}

fn verify_data_dir(
    data_dir: &Path,
    verifier: &NoteVerifier,
    options: &VerifyOptions,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ledger_dir = data_dir.join("ledger");
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {bar:40} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
            )
            .expect("static template"),
        );
        Some(bar)
    } else {
        None
    };
    let mut progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let report = verify::verify_ledger_dir(&ledger_dir, verifier, options, &mut progress)
        .with_context(|| format!("cannot verify {}", data_dir.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        say(&report_json(&report).to_string());
    } else {
        say(&report_text(&report));
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn report_text(report: &Report) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    for tenant in &report.tenants {
        out.push_str(&format!(
            "tenant {}: {} records, signed up to {}, root {}\n",
            tenant.tenant,
            tenant.n_records,
            tenant
                .checkpoint_size
                .map_or("nothing".into(), |size| size.to_string()),
            b64.encode(tenant.root)
        ));
        for removal in &tenant.removals {
            out.push_str(&format!(
                "  removed by record {}: {}\n",
                removal.by_seq,
                removal_text(&removal.scope)
            ));
        }
        if tenant.n_removed > 0 {
            out.push_str(&format!(
                "  {} removed, each by a recorded removal; the tree keeps their hashes\n",
                plural(tenant.n_removed, "record")
            ));
        }
        if tenant.start > 0 {
            out.push_str(&format!(
                "  the log starts after its first {}, all removed, kept as the hashes of their complete subtrees\n",
                plural(tenant.start, "record")
            ));
        }
    }
    for warning in &report.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    for fault in &report.faults {
        out.push_str(&format!("FAULT {fault}\n"));
    }
    if report.is_ok() {
        out.push_str(&format!(
            "OK: {} in {} and {} verify",
            plural(report.n_records, "record"),
            plural(report.tenants.len() as u64, "tenant log"),
            plural(report.n_checkpoints, "signed checkpoint"),
        ));
    } else {
        out.push_str(&format!("FAILED: {} faults", report.faults.len()));
    }
    out
}

fn report_json(report: &Report) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "ok": report.is_ok(),
        "records": report.n_records,
        "checkpoints": report.n_checkpoints,
        "tenants": report.tenants.iter().map(|t| serde_json::json!({
            "tenant": t.tenant.as_str(),
            "records": t.n_records,
            "checkpoint_size": t.checkpoint_size,
            "root": b64.encode(t.root),
            "removed": t.n_removed,
            "starts_after": t.start,
            "removals": t.removals.iter().map(|removal| match &removal.scope {
                RemovalScope::Below { below, except } => serde_json::json!({
                    "by_seq": removal.by_seq, "below": below, "except": except,
                }),
                RemovalScope::Seqs(seqs) => serde_json::json!({
                    "by_seq": removal.by_seq, "seqs": seqs,
                }),
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "warnings": report.warnings,
        "faults": report.faults.iter().map(|f| serde_json::json!({
            "kind": format!("{:?}", f.kind),
            "tenant": f.tenant.as_ref().map(TenantId::as_str),
            "seq": f.seq,
            "pos": f.pos,
            "detail": f.detail,
        })).collect::<Vec<_>>(),
    })
}

/// What a removal took out, in words.
fn removal_text(scope: &RemovalScope) -> String {
    match scope {
        RemovalScope::Below { below, except } if except.is_empty() => {
            format!("every record below seq {below} (retention)")
        }
        RemovalScope::Below { below, except } => format!(
            "every record below seq {below} but {} under a legal hold (retention)",
            except.len()
        ),
        RemovalScope::Seqs(seqs) => format!("{} (erasure)", plural(seqs.len() as u64, "record")),
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Writes a line to standard output; a closed pipe is not an error worth a panic.
fn say(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}
