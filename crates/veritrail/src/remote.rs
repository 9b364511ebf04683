//! The client commands of the `veritrail` tool: they talk to a veritrail server over its
//! HTTP API with `veritrail-client` (`send`, `search`, `tail`, `count`, `get`, `checkpoint`,
//! `log-key`, `proof`, `export`, `me`, `keys`, `tenants`, `catalog`, `webhooks`), and verify
//! an export bundle offline ([`verify_export_command`]).
//!
//! Output is for people by default (aligned tables) and for scripts with `--json`. Exit
//! codes: 0 done, 1 the server refused (a 4xx), a send had rejected events, or a bundle
//! has faults; 2 it could not run (no server, bad arguments, a 5xx).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use veritrail_api::{
    CountParams, CountResponse, EventInput, KeyBody, Role, SearchParams, WebhookAttempt,
    WebhookAttemptParams, WebhookBody, WebhookFilter, WebhookInput, WebhookPatch,
    WebhookRedeliverInput, WebhookRotateInput,
};
use veritrail_client::export::{ExportReport, ExportVerifyOptions, verify_export};
use veritrail_client::{
    BatchError, BatchReport, Batcher, BatcherOptions, Client, ClientError, IngestOptions, KeyScope,
    LeafRef, Wait,
};
use veritrail_core::note::NoteVerifier;

/// Where the server is and which key to present.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The server's base URL (http or https, optionally with a path prefix).
    #[arg(long, env = "VERITRAIL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The API key (`vt_...`): a tenant key, or the server-admin key.
    #[arg(long, env = "VERITRAIL_KEY", hide_env_values = true)]
    key: String,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        Client::new(&self.url, &self.key).context("cannot set up the client")
    }
}

/// The filters shared by `search` and `count`.
#[derive(Debug, Args)]
pub(crate) struct Filters {
    /// Event types, comma-separated: exact (`user.login`) or a prefix (`user.*`).
    #[arg(long = "type", value_name = "TYPES")]
    event_type: Option<String>,
    /// Catalog category.
    #[arg(long)]
    category: Option<String>,
    /// Catalog numeric code.
    #[arg(long)]
    code: Option<String>,
    /// Catalog event name.
    #[arg(long)]
    name: Option<String>,
    /// Actor id or email.
    #[arg(long)]
    actor: Option<String>,
    /// Target id or name.
    #[arg(long)]
    target: Option<String>,
    /// `success`, `failure`, `pending` or `unknown`.
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    /// The client's event id.
    #[arg(long)]
    id: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Events before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Free text; every word must match; `word*` matches a prefix.
    #[arg(long)]
    q: Option<String>,
}

/// The client commands.
#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// Send events to the server.
    ///
    /// Reads one JSON event, a JSON array of events, or one event per line (JSON lines),
    /// from FILE or standard input; sends them in batches, giving each event without an
    /// `id` a random one so that retries never store it twice; prints a receipt per event.
    /// Exits 1 if the server rejected any event.
    Send {
        #[command(flatten)]
        connection: Connection,
        /// File of events; `-` or nothing for standard input.
        file: Option<PathBuf>,
        /// Reply only once search finds the events.
        #[arg(long)]
        searchable: bool,
        /// Events per request (at most 1000).
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
        /// Print receipts as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Search events; newest first unless `--order asc`.
    Search {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        filters: Filters,
        /// Page size, 1 to 1000.
        #[arg(long)]
        limit: Option<u32>,
        /// `desc` (newest first) or `asc`.
        #[arg(long)]
        order: Option<String>,
        /// Continue from the `next_cursor` of an earlier page.
        #[arg(long)]
        cursor: Option<String>,
        /// Follow cursors to the last page.
        #[arg(long)]
        all: bool,
        /// Print records as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Print events as they are stored, until interrupted (Ctrl-C).
    ///
    /// Takes the filters of `search`. Starts with the events stored from now on, or at
    /// `--from-seq`; when the connection drops (a server restart) it connects again and
    /// carries on where it was, without missing or repeating an event.
    Tail {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        filters: Filters,
        /// Start at this seq (0: the whole log) instead of with the events stored from now
        /// on.
        #[arg(long, value_name = "SEQ")]
        from_seq: Option<u64>,
        /// Print records as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Count events, optionally grouped or as a histogram.
    Count {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        filters: Filters,
        /// `type`, `category`, `outcome` or `actor`.
        #[arg(long)]
        group_by: Option<String>,
        /// Histogram bucket width, like `15m`, `1h`, `1d`.
        #[arg(long)]
        interval: Option<String>,
        /// Print the response as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one record by its seq.
    Get {
        #[command(flatten)]
        connection: Connection,
        seq: u64,
        /// Include its inclusion proof in the latest checkpoint.
        #[arg(long)]
        proof: bool,
        /// Print the response as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the latest signed checkpoint of the key's log.
    Checkpoint {
        #[command(flatten)]
        connection: Connection,
    },
    /// Print the deployment's verifier key and the log's origin.
    LogKey {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Print an inclusion or consistency proof (JSON).
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Download the log's export bundle, and optionally verify it.
    Export {
        #[command(flatten)]
        connection: Connection,
        /// Where to write the bundle (written aside, renamed once complete).
        #[arg(long)]
        out: PathBuf,
        /// Verify the bundle after downloading it (needs `--verifier-key`).
        #[arg(long, requires = "verifier_key")]
        verify: bool,
        /// The pinned verifier key string to verify against (not taken from the server).
        #[arg(long, env = "VERITRAIL_VERIFIER_KEY")]
        verifier_key: Option<String>,
        /// Print the verification report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print who the key is.
    Me {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage tenants (server-admin key).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// The tenant's event catalog: import, export, list, settings, shared catalogs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Webhook subscriptions: matching events POSTed, signed, to a URL (owner, super_admin
    /// or admin key).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

/// `veritrail proof ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProofCommand {
    /// The inclusion proof of a record, by seq or by event id.
    Inclusion {
        #[command(flatten)]
        connection: Connection,
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        seq: Option<u64>,
        #[arg(long)]
        id: Option<String>,
        /// The tree size to prove inclusion in (default: the latest checkpoint's).
        #[arg(long)]
        tree_size: Option<u64>,
    },
    /// The consistency proof between two tree sizes.
    Consistency {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
}

/// `veritrail keys ...`: the key's own tenant, or with `--tenant` (server admin) another.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// List keys, revoked ones included.
    List {
        #[command(flatten)]
        connection: Connection,
        /// The tenant whose keys to list (server-admin key only).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Create a key and print its secret (shown only this once).
    Create {
        #[command(flatten)]
        connection: Connection,
        /// owner, super_admin, admin, viewer or publisher.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// What the key is for.
        #[arg(long)]
        name: Option<String>,
        /// The tenant to create it in (server-admin key only).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key.
    Revoke {
        #[command(flatten)]
        connection: Connection,
        key_id: String,
        /// The key's tenant (server-admin key only).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// `veritrail tenants ...` (server-admin key).
#[derive(Debug, Subcommand)]
pub(crate) enum TenantsCommand {
    /// Create a tenant and print its first owner key's secret (shown only this once).
    Create {
        #[command(flatten)]
        connection: Connection,
        /// `[a-z0-9][a-z0-9_-]*`, at most 64 bytes.
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant.
    Get {
        #[command(flatten)]
        connection: Connection,
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// `veritrail catalog ...`: the key's tenant's event catalog.
#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Replace the tenant's catalog with a `veritrail-catalog/v1` file (YAML or JSON; see
    /// `catalogs/`), stored as a new version (owner, super_admin or admin key).
    Import {
        #[command(flatten)]
        connection: Connection,
        /// The catalog file; `.json` is sent as JSON, anything else as YAML.
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print the tenant's catalog document (YAML, or JSON with `--json`).
    Export {
        #[command(flatten)]
        connection: Connection,
        /// A stored version (default: the latest).
        #[arg(long)]
        version: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// List categories with their event counts and types.
    List {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Show or change the policy (`strict`, `lenient`) and the adopted shared catalogs.
    Settings {
        #[command(flatten)]
        connection: Connection,
        /// `strict` or `lenient`.
        #[arg(long)]
        policy: Option<String>,
        /// Shared catalogs to adopt, comma-separated (an empty value adopts none).
        #[arg(long, value_delimiter = ',')]
        adopt: Option<Vec<String>>,
        #[arg(long)]
        json: bool,
    },
    /// List the shared catalogs a tenant can adopt.
    Shared {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
}

/// Which events a subscription sends: each list given replaces that part of the filter (an
/// empty value empties it: every type, category or outcome).
#[derive(Debug, Args)]
pub(crate) struct WebhookFilterArgs {
    /// Event types (`user.*` matches a prefix); repeatable or comma-separated.
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    types: Option<Vec<String>>,
    /// Catalog categories, any case; repeatable.
    #[arg(long = "category", value_name = "CATEGORY")]
    categories: Option<Vec<String>>,
    /// Outcomes (`success`, `failure`, `unknown`); repeatable or comma-separated.
    #[arg(long = "outcome", value_name = "OUTCOME", value_delimiter = ',')]
    outcomes: Option<Vec<String>>,
}

impl WebhookFilterArgs {
    fn is_empty(&self) -> bool {
        self.types.is_none() && self.categories.is_none() && self.outcomes.is_none()
    }

    /// `filter` with the lists given replaced.
    fn apply(self, mut filter: WebhookFilter) -> WebhookFilter {
        let clean = |values: Vec<String>| -> Vec<String> {
            values
                .into_iter()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
                .collect()
        };
        if let Some(types) = self.types {
            filter.types = clean(types);
        }
        if let Some(categories) = self.categories {
            filter.categories = clean(categories);
        }
        if let Some(outcomes) = self.outcomes {
            filter.outcomes = clean(outcomes);
        }
        filter
    }
}

/// What `webhooks create` and `webhooks update` set besides the URL.
#[derive(Debug, Args)]
pub(crate) struct WebhookSettingsArgs {
    #[command(flatten)]
    filter: WebhookFilterArgs,
    /// `standard` (Standard Webhooks: `{type, timestamp, data}`, the default) or
    /// `envelope` (seed 003's notification envelope).
    #[arg(long)]
    format: Option<String>,
    /// `every_single` (one message per event, the default) or a window like `60s`, `5m`,
    /// `1h` (one message per type and actor per window).
    #[arg(long)]
    grouping: Option<String>,
    /// A note for people.
    #[arg(long)]
    description: Option<String>,
}

/// `veritrail webhooks ...`: the key's tenant's webhook subscriptions.
#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Create a subscription and print its signing secret (shown only this once).
    Create {
        #[command(flatten)]
        connection: Connection,
        /// Where deliveries are POSTed (http or https). (`--url` is the server's.)
        #[arg(long, value_name = "URL")]
        endpoint: String,
        #[command(flatten)]
        settings: WebhookSettingsArgs,
        /// The signing secret (`whsec_` and base64 of 24 to 64 bytes); generated if not
        /// given.
        #[arg(long)]
        secret: Option<String>,
        /// The first seq to deliver (default: the events stored from now on).
        #[arg(long, value_name = "SEQ")]
        start_seq: Option<u64>,
        /// Create it paused (`webhooks update ID --enable` starts it).
        #[arg(long)]
        disabled: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the tenant's subscriptions.
    List {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Show one subscription: its filter, delivery progress and secrets.
    Show {
        #[command(flatten)]
        connection: Connection,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a subscription; what is not given stays as it is.
    Update {
        #[command(flatten)]
        connection: Connection,
        id: String,
        /// Where deliveries are POSTed.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        #[command(flatten)]
        settings: WebhookSettingsArgs,
        /// Resume a paused or disabled subscription where it stopped.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Pause deliveries (events are kept for when it is enabled again).
        #[arg(long)]
        disable: bool,
        #[arg(long)]
        json: bool,
    },
    /// Replace the signing secret and print the new one (shown only this once).
    Rotate {
        #[command(flatten)]
        connection: Connection,
        id: String,
        /// Seconds the previous secret keeps signing too (default: one day; 0 ends it now).
        #[arg(long, value_name = "SECONDS")]
        overlap: Option<u64>,
        /// The new secret (`whsec_...`); generated if not given.
        #[arg(long)]
        secret: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a subscription.
    Delete {
        #[command(flatten)]
        connection: Connection,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List delivery attempts, newest first.
    Attempts {
        #[command(flatten)]
        connection: Connection,
        id: String,
        /// At most this many (1 to 1000; default 100).
        #[arg(long)]
        limit: Option<usize>,
        /// Attempts older than this attempt id (the `--before` a previous page printed).
        #[arg(long, value_name = "ATTEMPT_ID")]
        before: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Send one message, or the messages of a range of seqs, again.
    #[command(group(
        clap::ArgGroup::new("messages")
            .required(true)
            .args(["message_id", "from_seq"])
    ))]
    Redeliver {
        #[command(flatten)]
        connection: Connection,
        id: String,
        /// The message to send again (its `webhook-id`, as `attempts` shows it).
        #[arg(long, value_name = "MESSAGE_ID", conflicts_with = "to_seq")]
        message_id: Option<String>,
        /// The first seq of the range.
        #[arg(long, value_name = "SEQ", requires = "to_seq")]
        from_seq: Option<u64>,
        /// The last seq of the range (included).
        #[arg(long, value_name = "SEQ", requires = "from_seq")]
        to_seq: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Send a test message now and print what the receiver answered (exits 1 if it was
    /// not delivered).
    Ping {
        #[command(flatten)]
        connection: Connection,
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn parse_role(name: &str) -> Result<Role, String> {
    Role::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
        format!("unknown role {name:?}; one of {}", names.join(", "))
    })
}

/// Runs a client command on a single-threaded runtime. A refusal by the server (4xx) is
/// printed and exits 1; everything else that goes wrong is an `Err` (exit 2).
pub(crate) fn run(command: RemoteCommand) -> anyhow::Result<ExitCode> {
    let runtime = veritrail_client::runtime().context("cannot start the async runtime")?;
    match runtime.block_on(execute(command)) {
        Err(err) => match refusal(&err) {
            Some(client_error) => {
                eprintln!("error: {}", describe_refusal(client_error));
                Ok(ExitCode::from(1))
            }
            None => Err(err),
        },
        ok => ok,
    }
}

/// The server's 4xx inside `err`, if that is what it is.
fn refusal(err: &anyhow::Error) -> Option<&ClientError> {
    let client_error = err
        .downcast_ref::<ClientError>()
        .or_else(|| err.downcast_ref::<BatchError>().map(|batch| &batch.source))?;
    matches!(client_error.status(), Some(400..=499)).then_some(client_error)
}

fn describe_refusal(err: &ClientError) -> String {
    let ClientError::Api {
        status,
        code,
        message,
        events,
        errors,
        request_id,
        ..
    } = err
    else {
        return err.to_string();
    };
    let mut text = format!("{message} ({code}, HTTP {status}");
    if let Some(request_id) = request_id {
        text.push_str(&format!(", request {request_id}"));
    }
    text.push(')');
    for event in events {
        for field in &event.errors {
            text.push_str(&format!(
                "\n  event {}: {}: {} ({})",
                event.index, field.field, field.message, field.code
            ));
        }
    }
    for field in errors {
        text.push_str(&format!(
            "\n  {}: {} ({})",
            if field.field.is_empty() {
                "document"
            } else {
                &field.field
            },
            field.message,
            field.code
        ));
    }
    text
}

async fn execute(command: RemoteCommand) -> anyhow::Result<ExitCode> {
    let mut out = Out::new();
    match command {
        RemoteCommand::Send {
            connection,
            file,
            searchable,
            batch_size,
            json,
        } => {
            let options = BatcherOptions {
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
            };
            send(
                &connection.client()?,
                options,
                file.as_deref(),
                json,
                &mut out,
            )
            .await
        }
        RemoteCommand::Search {
            connection,
            filters,
            limit,
            order,
            cursor,
            all,
            json,
        } => {
            let params = search_params(filters, limit, order, cursor);
            search(&connection.client()?, params, all, json, &mut out).await
        }
        RemoteCommand::Tail {
            connection,
            filters,
            from_seq,
            json,
        } => {
            let params = search_params(filters, None, None, None);
            tail(&connection.client()?, params, from_seq, json, &mut out).await
        }
        RemoteCommand::Count {
            connection,
            filters,
            group_by,
            interval,
            json,
        } => {
            let params = count_params(filters, group_by, interval);
            let response = connection.client()?.count(&params).await?;
            if json {
                out.line(&serde_json::to_string(&response)?)?;
            } else {
                out.line(&count_text(&response))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Get {
            connection,
            seq,
            proof,
            json,
        } => {
            let client = connection.client()?;
            let response = if proof {
                client.record_with_proof(seq).await?
            } else {
                client.record(seq).await?
            };
            if json {
                out.line(&serde_json::to_string(&response)?)?;
            } else {
                out.line(&serde_json::to_string_pretty(&response)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Checkpoint { connection } => {
            let checkpoint = connection.client()?.checkpoint().await?;
            out.line(checkpoint.trim_end())?;
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::LogKey { connection, json } => {
            let key = connection.client()?.log_key().await?;
            if json {
                out.line(&serde_json::to_string(&key)?)?;
            } else {
                out.line(&format!(
                    "verifier key: {}\norigin:       {}",
                    key.verifier_key, key.origin
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Proof(ProofCommand::Inclusion {
            connection,
            seq,
            id,
            tree_size,
        }) => {
            let leaf = match (seq, id) {
                (Some(seq), _) => LeafRef::Seq(seq),
                (None, Some(id)) => LeafRef::Id(id),
                (None, None) => bail!("give --seq or --id"),
            };
            let proof = connection
                .client()?
                .inclusion_proof(&leaf, tree_size)
                .await?;
            out.line(&serde_json::to_string_pretty(&proof)?)?;
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Proof(ProofCommand::Consistency {
            connection,
            from,
            to,
        }) => {
            let proof = connection.client()?.consistency_proof(from, to).await?;
            out.line(&serde_json::to_string_pretty(&proof)?)?;
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Export {
            connection,
            out: path,
            verify,
            verifier_key,
            json,
        } => {
            let verifier = match (&verifier_key, verify) {
                (Some(key), true) => {
                    Some(NoteVerifier::parse(key).context("the verifier key does not parse")?)
                }
                _ => None,
            };
            let n_bytes = download_export(&connection.client()?, &path).await?;
            match verifier {
                Some(verifier) => verify_export_file(&path, &verifier, json, &mut out),
                None => {
                    out.line(&format!("wrote {n_bytes} bytes to {}", path.display()))?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        RemoteCommand::Me { connection, json } => {
            let me = connection.client()?.me().await?;
            if json {
                out.line(&serde_json::to_string(&me)?)?;
            } else if let (Some(tenant), Some(role)) = (&me.tenant, me.role) {
                out.line(&format!("key {} ({role}) of tenant {tenant}", me.key_id))?;
            } else {
                out.line(&format!("key {} (server admin)", me.key_id))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RemoteCommand::Keys(command) => keys(command, &mut out).await,
        RemoteCommand::Tenants(command) => tenants(command, &mut out).await,
        RemoteCommand::Catalog(command) => catalog(command, &mut out).await,
        RemoteCommand::Webhooks(command) => webhooks(command, &mut out).await,
    }
}

/// Reads events and sends them through a [`Batcher`], printing receipts as batches
/// complete.
async fn send(
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
                        "id": receipt.receipt.id,
                        "seq": receipt.receipt.seq,
                        "leaf_hash": receipt.receipt.leaf_hash,
                        "duplicate": receipt.receipt.duplicate,
                    })
                    .to_string(),
                )?;
            } else {
                out.line(&format!(
                    "event {:>6}  seq {:>8}  id {}{}",
                    receipt.index,
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

fn search_params(
    filters: Filters,
    limit: Option<u32>,
    order: Option<String>,
    cursor: Option<String>,
) -> SearchParams {
    SearchParams {
        event_type: filters.event_type,
        category: filters.category,
        code: filters.code,
        name: filters.name,
        actor: filters.actor,
        target: filters.target,
        outcome: filters.outcome,
        correlation_id: filters.correlation_id,
        id: filters.id,
        from: filters.from,
        to: filters.to,
        q: filters.q,
        order,
        limit: limit.map(|limit| limit.to_string()),
        cursor,
    }
}

fn count_params(
    filters: Filters,
    group_by: Option<String>,
    interval: Option<String>,
) -> CountParams {
    CountParams {
        event_type: filters.event_type,
        category: filters.category,
        code: filters.code,
        name: filters.name,
        actor: filters.actor,
        target: filters.target,
        outcome: filters.outcome,
        correlation_id: filters.correlation_id,
        id: filters.id,
        from: filters.from,
        to: filters.to,
        q: filters.q,
        group_by,
        interval,
    }
}

async fn search(
    client: &Client,
    params: SearchParams,
    all: bool,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let mut pager = client.search_all(params);
    let mut n_events = 0u64;
    let mut printed_header = false;
    while let Some(page) = pager.next_page().await? {
        n_events += page.events.len() as u64;
        if json {
            for event in &page.events {
                out.line(&event.to_string())?;
            }
        } else {
            out.line(&events_table(&page.events, !printed_header))?;
            printed_header = true;
        }
        if page.indexed_size < page.log_size {
            eprintln!(
                "note: search covers seqs below {}; the log holds {} (the newest are being indexed)",
                page.indexed_size, page.log_size
            );
        }
        if !all {
            if let Some(cursor) = &page.next_cursor {
                eprintln!("more: --cursor {cursor} (or --all)");
            }
            break;
        }
    }
    if !json {
        out.line(&plural(n_events, "event"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Records as an aligned table: seq, time, type, actor, outcome, summary.
fn events_table(events: &[Value], header: bool) -> String {
    let mut rows: Vec<[String; 6]> = Vec::with_capacity(events.len() + 1);
    if header {
        rows.push(EVENT_COLUMNS.map(str::to_owned));
    }
    rows.extend(events.iter().map(event_cells));
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| event_line(row, widths))
        .collect::<Vec<_>>()
        .join("\n")
}

const EVENT_COLUMNS: [&str; 6] = ["SEQ", "TIME", "TYPE", "ACTOR", "OUTCOME", "SUMMARY"];

/// The columns of [`events_table`] of one record.
fn event_cells(event: &Value) -> [String; 6] {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let actor = &event["actor"];
    [
        event["seq"]
            .as_u64()
            .map_or("-".into(), |seq| seq.to_string()),
        text(&event["occurred_at"])
            .or_else(|| text(&event["received_at"]))
            .unwrap_or_else(|| "-".into()),
        text(&event["type"]).unwrap_or_else(|| "-".into()),
        text(&actor["email"])
            .or_else(|| text(&actor["name"]))
            .or_else(|| text(&actor["id"]))
            .unwrap_or_else(|| "-".into()),
        text(&event["outcome"]).unwrap_or_else(|| "-".into()),
        text(&event["summary"])
            .or_else(|| text(&event["name"]))
            .map_or_else(|| "-".into(), |summary| shorten(&summary, 80)),
    ]
}

/// One row of [`events_table`]: the seq right-aligned, the summary last and unpadded.
fn event_line(row: &[String; 6], widths: [usize; 6]) -> String {
    let line: Vec<String> = row
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(column, (cell, width))| match column {
            0 => format!("{cell:>width$}"),
            5 => cell.clone(),
            _ => format!("{cell:<width$}"),
        })
        .collect();
    line.join("  ")
}

/// Column widths of `veritrail tail`, whose records come one at a time: wide enough for
/// most, and a longer cell just pushes its line's next ones.
const TAIL_WIDTHS: [usize; 6] = [8, 30, 28, 24, 7, 0];

/// `veritrail tail`: prints each matching record as it comes, forever. Reconnecting is
/// the tail's own business; what it cannot get past is reported and tried again, except a
/// refusal (a bad filter, a bad key), which ends the command.
async fn tail(
    client: &Client,
    params: SearchParams,
    from_seq: Option<u64>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let mut tail = match from_seq {
        Some(seq) => client.tail_from(params, seq),
        None => client.tail(params, None),
    };
    if !json {
        out.line(&event_line(&EVENT_COLUMNS.map(str::to_owned), TAIL_WIDTHS))?;
        out.flush()?;
    }
    while !out.is_closed() {
        match tail.next().await {
            Ok(event) => {
                if json {
                    out.line(&event.record.to_string())?;
                } else {
                    out.line(event_line(&event_cells(&event.record), TAIL_WIDTHS).trim_end())?;
                }
                out.flush()?;
            }
            Err(err) if err.is_client_error() => return Err(err.into()),
            Err(err) => {
                let after = tail
                    .last_seq()
                    .map_or_else(String::new, |seq| format!(" after seq {seq}"));
                eprintln!(
                    "warning: {:#}; trying again{after}",
                    anyhow::Error::from(err)
                );
            }
        }
    }
    // Standard output was closed (`| head`): nothing more to do.
    Ok(ExitCode::SUCCESS)
}

fn shorten(text: &str, max_chars: usize) -> String {
    let flat = text.replace(['\n', '\r', '\t'], " ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let mut short: String = flat.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}

fn count_text(response: &CountResponse) -> String {
    let mut out = format!("total {}", response.total);
    if let Some(groups) = &response.groups {
        // Events without the grouped field (no outcome, no actor) come under the key "".
        let label = |key: &str| {
            if key.is_empty() {
                "(none)".to_owned()
            } else {
                key.to_owned()
            }
        };
        let width = groups
            .iter()
            .map(|group| label(&group.key).chars().count())
            .max()
            .unwrap_or(0);
        for group in groups {
            out.push_str(&format!(
                "\n  {:<width$}  {:>10}",
                label(&group.key),
                group.count
            ));
        }
    }
    if let Some(buckets) = &response.histogram {
        out.push_str("\n  START                         COUNT    FAILURES");
        for bucket in buckets {
            out.push_str(&format!(
                "\n  {:<24}  {:>10}  {:>10}",
                bucket.start, bucket.count, bucket.failures
            ));
        }
    }
    if response.indexed_size < response.log_size {
        out.push_str(&format!(
            "\n(counted seqs below {}; the log holds {})",
            response.indexed_size, response.log_size
        ));
    }
    out
}

async fn keys(command: KeysCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    let scope = |tenant: Option<String>| tenant.map_or(KeyScope::Own, KeyScope::Tenant);
    match command {
        KeysCommand::List {
            connection,
            tenant,
            json,
        } => {
            let list = connection.client()?.list_keys(&scope(tenant)).await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                out.line(&keys_table(&list.keys))?;
            }
        }
        KeysCommand::Create {
            connection,
            role,
            name,
            tenant,
            json,
        } => {
            let created = connection
                .client()?
                .create_key(&scope(tenant), role, name.as_deref())
                .await?;
            if json {
                out.line(&serde_json::to_string(&created)?)?;
            } else {
                out.line(&format!(
                    "created key {} ({}) of tenant {}\nsecret (shown only now): {}",
                    created.key.id, created.key.role, created.key.tenant, created.secret
                ))?;
            }
        }
        KeysCommand::Revoke {
            connection,
            key_id,
            tenant,
            json,
        } => {
            let key = connection
                .client()?
                .revoke_key(&scope(tenant), &key_id)
                .await?;
            if json {
                out.line(&serde_json::to_string(&key)?)?;
            } else {
                out.line(&format!(
                    "revoked key {} of tenant {} at {}",
                    key.id,
                    key.tenant,
                    key.revoked_at.as_deref().unwrap_or("-")
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn keys_table(keys: &[KeyBody]) -> String {
    let mut rows = vec![["ID", "ROLE", "NAME", "CREATED", "BY", "REVOKED"].map(str::to_owned)];
    for key in keys {
        rows.push([
            key.id.clone(),
            key.role.to_string(),
            key.name.clone().unwrap_or_else(|| "-".into()),
            key.created_at.clone(),
            key.created_by.clone(),
            key.revoked_at.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table(&rows)
}

async fn catalog(command: CatalogCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Import {
            connection,
            file,
            json,
        } => {
            let document =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let content_type = if file.extension().is_some_and(|ext| ext == "json") {
                "application/json"
            } else {
                "application/yaml"
            };
            let changed = connection
                .client()?
                .put_catalog(document, content_type)
                .await?;
            if json {
                out.line(&serde_json::to_string(&changed)?)?;
            } else {
                out.line(&format!(
                    "imported {}: version {}, {} event types",
                    file.display(),
                    changed.version,
                    changed.entries
                ))?;
            }
        }
        CatalogCommand::Export {
            connection,
            version,
            json,
        } => {
            let client = connection.client()?;
            if json {
                let body = client.catalog(version).await?;
                out.line(&serde_json::to_string_pretty(&body.catalog)?)?;
            } else {
                out.line(client.catalog_yaml(version).await?.trim_end())?;
            }
        }
        CatalogCommand::List { connection, json } => {
            let list = connection.client()?.catalog_categories().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows =
                    vec![["CATEGORY", "TYPE", "CODE", "NAME", "EVENTS"].map(str::to_owned)];
                for category in &list.categories {
                    let name = category.category.clone().unwrap_or_else(|| "(none)".into());
                    rows.push([
                        name,
                        String::new(),
                        String::new(),
                        String::new(),
                        category.count.to_string(),
                    ]);
                    for event_type in &category.types {
                        rows.push([
                            String::new(),
                            event_type.event_type.clone(),
                            event_type.code.map(|c| c.to_string()).unwrap_or_default(),
                            event_type.name.clone().unwrap_or_default(),
                            event_type.count.to_string(),
                        ]);
                    }
                }
                out.line(&table(&rows))?;
            }
        }
        CatalogCommand::Settings {
            connection,
            policy,
            adopt,
            json,
        } => {
            let client = connection.client()?;
            let mut settings = client.catalog_settings().await?;
            if policy.is_some() || adopt.is_some() {
                if let Some(policy) = policy {
                    settings.policy = policy;
                }
                if let Some(adopt) = adopt {
                    settings.adopted = adopt.into_iter().filter(|id| !id.is_empty()).collect();
                }
                settings = client.put_catalog_settings(&settings).await?;
            }
            if json {
                out.line(&serde_json::to_string(&settings)?)?;
            } else {
                out.line(&format!(
                    "policy {}\nadopted {}",
                    settings.policy,
                    if settings.adopted.is_empty() {
                        "(none)".to_owned()
                    } else {
                        settings.adopted.join(", ")
                    }
                ))?;
            }
        }
        CatalogCommand::Shared { connection, json } => {
            let list = connection.client()?.shared_catalogs().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows = vec![["ID", "TYPES", "TITLE"].map(str::to_owned)];
                for catalog in &list.catalogs {
                    rows.push([
                        catalog.id.clone(),
                        catalog.entries.to_string(),
                        catalog.title.clone().unwrap_or_default(),
                    ]);
                }
                out.line(&table(&rows))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn tenants(command: TenantsCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    match command {
        TenantsCommand::Create {
            connection,
            id,
            name,
            json,
        } => {
            let created = connection
                .client()?
                .create_tenant(&id, name.as_deref())
                .await?;
            if json {
                out.line(&serde_json::to_string(&created)?)?;
            } else {
                out.line(&format!(
                    "created tenant {}\nowner key {}\nsecret (shown only now): {}",
                    created.tenant.id, created.owner_key.key.id, created.owner_key.secret
                ))?;
            }
        }
        TenantsCommand::List { connection, json } => {
            let list = connection.client()?.list_tenants().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows = vec![["ID", "NAME", "CREATED", "RECORDS"].map(str::to_owned)];
                for tenant in &list.tenants {
                    rows.push([
                        tenant.id.clone(),
                        tenant.name.clone().unwrap_or_else(|| "-".into()),
                        tenant.created_at.clone(),
                        tenant.log_size.to_string(),
                    ]);
                }
                out.line(&table(&rows))?;
            }
        }
        TenantsCommand::Get {
            connection,
            id,
            json,
        } => {
            let tenant = connection.client()?.tenant(&id).await?;
            if json {
                out.line(&serde_json::to_string(&tenant)?)?;
            } else {
                out.line(&format!(
                    "tenant {}  name {}  created {}  records {}",
                    tenant.id,
                    tenant.name.as_deref().unwrap_or("-"),
                    tenant.created_at,
                    tenant.log_size
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn webhooks(command: WebhooksCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    match command {
        WebhooksCommand::Create {
            connection,
            endpoint,
            settings,
            secret,
            start_seq,
            disabled,
            json,
        } => {
            let input = WebhookInput {
                url: endpoint,
                description: settings.description,
                filter: settings.filter.apply(WebhookFilter::default()),
                format: settings.format,
                grouping: settings.grouping,
                secret,
                start_seq,
                enabled: disabled.then_some(false),
            };
            let created = connection.client()?.create_webhook(&input).await?;
            if json {
                out.line(&serde_json::to_string(&created)?)?;
            } else {
                let hook = &created.webhook;
                out.line(&format!(
                    "created webhook {} for {} ({}; {})\nsecret (shown only now): {}",
                    hook.id,
                    hook.url,
                    if hook.enabled { "enabled" } else { "disabled" },
                    filter_text(&hook.filter),
                    created.secret
                ))?;
            }
        }
        WebhooksCommand::List { connection, json } => {
            let list = connection.client()?.webhooks().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows = vec![
                    [
                        "ID",
                        "URL",
                        "STATUS",
                        "EVENTS",
                        "FORMAT",
                        "GROUPING",
                        "NEXT SEQ",
                        "FAILING SINCE",
                    ]
                    .map(str::to_owned),
                ];
                for hook in &list.webhooks {
                    rows.push([
                        hook.id.clone(),
                        hook.url.clone(),
                        if hook.enabled { "enabled" } else { "disabled" }.to_owned(),
                        shorten(&filter_text(&hook.filter), 40),
                        hook.format.clone(),
                        hook.grouping.clone(),
                        hook.next_seq.to_string(),
                        hook.failing_since.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                out.line(&table(&rows))?;
            }
        }
        WebhooksCommand::Show {
            connection,
            id,
            json,
        } => {
            let hook = connection.client()?.webhook(&id).await?;
            if json {
                out.line(&serde_json::to_string(&hook)?)?;
            } else {
                out.line(&webhook_text(&hook))?;
            }
        }
        WebhooksCommand::Update {
            connection,
            id,
            endpoint,
            settings,
            enable,
            disable,
            json,
        } => {
            let client = connection.client()?;
            let filter = if settings.filter.is_empty() {
                None
            } else {
                // The lists not given are kept: read them first.
                let current = client.webhook(&id).await?.filter;
                Some(settings.filter.apply(current))
            };
            let patch = WebhookPatch {
                url: endpoint,
                description: settings.description,
                filter,
                format: settings.format,
                grouping: settings.grouping,
                enabled: if enable {
                    Some(true)
                } else if disable {
                    Some(false)
                } else {
                    None
                },
            };
            if patch == WebhookPatch::default() {
                bail!(
                    "nothing to change: give --endpoint, --type, --category, --outcome, --format, --grouping, --description, --enable or --disable"
                );
            }
            let hook = client.update_webhook(&id, &patch).await?;
            if json {
                out.line(&serde_json::to_string(&hook)?)?;
            } else {
                out.line(&format!(
                    "updated webhook {}\n{}",
                    hook.id,
                    webhook_text(&hook)
                ))?;
            }
        }
        WebhooksCommand::Rotate {
            connection,
            id,
            overlap,
            secret,
            json,
        } => {
            let input = WebhookRotateInput {
                secret,
                overlap_seconds: overlap,
            };
            let rotated = connection
                .client()?
                .rotate_webhook_secret(&id, &input)
                .await?;
            if json {
                out.line(&serde_json::to_string(&rotated)?)?;
            } else {
                let previous = rotated
                    .webhook
                    .secrets
                    .iter()
                    .filter_map(|secret| secret.expires_at.as_deref())
                    .max()
                    .map_or_else(
                        || "the previous one no longer signs".to_owned(),
                        |until| format!("the previous one signs too until {until}"),
                    );
                out.line(&format!(
                    "rotated the secret of webhook {}; {previous}\nsecret (shown only now): {}",
                    rotated.webhook.id, rotated.secret
                ))?;
            }
        }
        WebhooksCommand::Delete {
            connection,
            id,
            json,
        } => {
            connection.client()?.delete_webhook(&id).await?;
            if json {
                out.line(&json!({"id": id, "deleted": true}).to_string())?;
            } else {
                out.line(&format!("deleted webhook {id}"))?;
            }
        }
        WebhooksCommand::Attempts {
            connection,
            id,
            limit,
            before,
            json,
        } => {
            let params = WebhookAttemptParams { before, limit };
            let list = connection.client()?.webhook_attempts(&id, &params).await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                out.line(&attempts_table(&list.attempts))?;
                if let Some(before) = list.next_before {
                    eprintln!("more: --before {before}");
                }
            }
        }
        WebhooksCommand::Redeliver {
            connection,
            id,
            message_id,
            from_seq,
            to_seq,
            json,
        } => {
            let input = WebhookRedeliverInput {
                message_id,
                from_seq,
                to_seq,
            };
            let queued = connection.client()?.redeliver_webhook(&id, &input).await?;
            if json {
                out.line(&serde_json::to_string(&queued)?)?;
            } else {
                let mut text =
                    format!("queued {} for redelivery", plural(queued.queued, "message"));
                const SHOWN: usize = 10;
                if !queued.message_ids.is_empty() {
                    text.push_str(": ");
                    let shown: Vec<&str> = queued
                        .message_ids
                        .iter()
                        .take(SHOWN)
                        .map(String::as_str)
                        .collect();
                    text.push_str(&shown.join(", "));
                    if queued.message_ids.len() > SHOWN {
                        text.push_str(&format!(" and {} more", queued.message_ids.len() - SHOWN));
                    }
                }
                out.line(&text)?;
            }
        }
        WebhooksCommand::Ping {
            connection,
            id,
            json,
        } => {
            let attempt = connection.client()?.ping_webhook(&id).await?;
            if json {
                out.line(&serde_json::to_string(&attempt)?)?;
            } else {
                let status = attempt
                    .status
                    .map_or_else(|| "no answer".to_owned(), |status| format!("HTTP {status}"));
                let error = attempt
                    .error
                    .as_deref()
                    .map_or_else(String::new, |error| format!(": {error}"));
                out.line(&format!(
                    "ping {}: {status} in {:.1} ms{error} (message {})",
                    if attempt.delivered {
                        "delivered"
                    } else {
                        "FAILED"
                    },
                    attempt.latency_ms,
                    attempt.message_id
                ))?;
            }
            if !attempt.delivered {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A subscription's filter in words.
fn filter_text(filter: &WebhookFilter) -> String {
    let parts: Vec<String> = [
        ("types", &filter.types),
        ("categories", &filter.categories),
        ("outcomes", &filter.outcomes),
    ]
    .into_iter()
    .filter(|(_, values)| !values.is_empty())
    .map(|(name, values)| format!("{name} {}", values.join(", ")))
    .collect();
    if parts.is_empty() {
        "every event".to_owned()
    } else {
        parts.join("; ")
    }
}

/// `webhooks show`: one field a line.
fn webhook_text(hook: &WebhookBody) -> String {
    let status = match (&hook.enabled, &hook.disabled_reason) {
        (true, _) => "enabled".to_owned(),
        (false, Some(reason)) => format!("disabled ({reason})"),
        (false, None) => "disabled".to_owned(),
    };
    let secrets: Vec<String> = hook
        .secrets
        .iter()
        .map(|secret| match &secret.expires_at {
            None => format!("current since {}", secret.created_at),
            Some(until) => format!("previous, signs until {until}"),
        })
        .collect();
    let rows = [
        ["webhook".to_owned(), hook.id.clone()],
        ["tenant".into(), hook.tenant.clone()],
        ["url".into(), hook.url.clone()],
        ["status".into(), status],
        [
            "description".into(),
            hook.description.clone().unwrap_or_else(|| "-".into()),
        ],
        ["events".into(), filter_text(&hook.filter)],
        ["format".into(), hook.format.clone()],
        ["grouping".into(), hook.grouping.clone()],
        [
            "delivered".into(),
            format!(
                "every matching event below seq {} (the log holds {})",
                hook.next_seq, hook.log_size
            ),
        ],
        [
            "failing".into(),
            hook.failing_since
                .as_deref()
                .map_or_else(|| "-".into(), |since| format!("since {since}")),
        ],
        ["secrets".into(), secrets.join("; ")],
        ["created".into(), hook.created_at.clone()],
        ["updated".into(), hook.updated_at.clone()],
    ];
    table(&rows)
}

/// `webhooks attempts`: one row per attempt.
fn attempts_table(attempts: &[WebhookAttempt]) -> String {
    let mut rows = vec![
        [
            "ID",
            "TIME",
            "KIND",
            "MESSAGE ID",
            "SEQ",
            "STATUS",
            "LATENCY",
            "ERROR",
        ]
        .map(str::to_owned),
    ];
    for attempt in attempts {
        rows.push([
            attempt.id.to_string(),
            attempt.attempted_at.clone(),
            attempt.kind.clone(),
            attempt.message_id.clone(),
            attempt
                .seq
                .map_or_else(|| "-".into(), |seq| seq.to_string()),
            attempt
                .status
                .map_or_else(|| "-".into(), |status| status.to_string()),
            format!("{:.1} ms", attempt.latency_ms),
            attempt
                .error
                .as_deref()
                .map_or_else(|| "-".into(), |error| shorten(error, 80)),
        ]);
    }
    table(&rows)
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
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

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Standard output, locked and buffered for the whole command, flushed when dropped. A
/// closed pipe (`| head`) ends the output quietly instead of failing the command.
struct Out {
    stdout: BufWriter<std::io::StdoutLock<'static>>,
    closed: bool,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out").field("closed", &self.closed).finish()
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.stdout.flush();
    }
}

impl Out {
    fn new() -> Self {
        Self {
            stdout: BufWriter::new(std::io::stdout().lock()),
            closed: false,
        }
    }

    /// Whether standard output was closed by its reader.
    fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends what was written so far (for output that comes over time).
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.stdout.flush() {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(err) => Err(err).context("cannot write to standard output"),
        }
    }

    fn line(&mut self, text: &str) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        match writeln!(self.stdout, "{text}") {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(err) => Err(err).context("cannot write to standard output"),
        }
    }
}

#[cfg(test)]
mod tests {
    use veritrail_api::GroupCount;

    use super::*;

    #[test]
    fn counts_show_events_without_the_grouped_field_as_none() {
        let response = CountResponse {
            total: 5,
            groups: Some(vec![
                GroupCount {
                    key: "success".into(),
                    count: 4,
                },
                GroupCount {
                    key: String::new(),
                    count: 1,
                },
            ]),
            histogram: None,
            indexed_size: 5,
            log_size: 5,
        };
        let text = count_text(&response);
        assert_eq!(
            text,
            "total 5\n  success           4\n  (none)            1"
        );
    }
}
