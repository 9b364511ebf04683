//! The command line of the client commands: every subcommand and argument struct (clap),
//! and the helpers that parse and apply arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use veritrail_api::{Role, ServiceRole, WebhookFilter};

use super::Connection;

/// The filters shared by `search` and `count`.
#[derive(Debug, Args)]
pub(crate) struct Filters {
    /// Event types, comma-separated: exact (`user.login`) or a prefix (`user.*`).
    #[arg(long = "type", value_name = "TYPES")]
    pub(super) event_type: Option<String>,
    /// Catalog category.
    #[arg(long)]
    pub(super) category: Option<String>,
    /// Catalog numeric code.
    #[arg(long)]
    pub(super) code: Option<String>,
    /// Catalog event name.
    #[arg(long)]
    pub(super) name: Option<String>,
    /// Actor id or email.
    #[arg(long)]
    pub(super) actor: Option<String>,
    /// Target id or name.
    #[arg(long)]
    pub(super) target: Option<String>,
    /// `success`, `failure`, `pending` or `unknown`.
    #[arg(long)]
    pub(super) outcome: Option<String>,
    #[arg(long)]
    pub(super) correlation_id: Option<String>,
    /// The client's event id.
    #[arg(long)]
    pub(super) id: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[arg(long)]
    pub(super) from: Option<String>,
    /// Events before this time (RFC 3339).
    #[arg(long)]
    pub(super) to: Option<String>,
    /// Free text; every word must match; `word*` matches a prefix.
    #[arg(long)]
    pub(super) q: Option<String>,
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
    /// Export events: the matching events as JSON Lines or CSV, or the whole log as a
    /// verification bundle.
    ///
    /// `--format jsonl` or `csv` downloads the events matching the filters of `search`, in
    /// seq order, with a progress bar; a cut connection is continued after the last whole
    /// row, and `--resume` continues a download that was interrupted. `--format bundle`
    /// (the default) downloads the self-verifying bundle, checked with `--verify`. The
    /// file is written beside OUT (`OUT.partial`) and renamed once complete.
    Export {
        #[command(flatten)]
        connection: Connection,
        /// Where to write the export.
        #[arg(long)]
        out: PathBuf,
        /// `bundle` (the log, verifiable offline), `jsonl`, `csv` or `ocsf` (the events
        /// matching the filters).
        #[arg(long, default_value = "bundle", value_parser = ["bundle", "jsonl", "csv", "ocsf"])]
        format: String,
        #[command(flatten)]
        filters: Filters,
        /// Continue the interrupted download in `OUT.partial` after its last whole row.
        #[arg(long)]
        resume: bool,
        /// Verify the bundle after downloading it (needs `--verifier-key`).
        #[arg(long, requires = "verifier_key")]
        verify: bool,
        /// The pinned verifier key string to verify against (not taken from the server).
        #[arg(long, env = "VERITRAIL_VERIFIER_KEY")]
        verifier_key: Option<String>,
        /// Print the verification report (or the export's summary) as JSON.
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
    /// Manage service keys (server-admin key): deployment-level keys that send events to,
    /// or embed the Activity view of, many tenants (the tenant named per request).
    #[command(subcommand, name = "service-keys")]
    ServiceKeys(ServiceKeysCommand),
    /// The tenant's event catalog: import, export, list, settings, shared catalogs.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Webhook subscriptions: matching events POSTed, signed, to a URL (owner, super_admin
    /// or admin key).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The tenant's retention policy: how long its log keeps events (owner or super_admin
    /// key to change or run it; any reader to see it).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Erase one subject's events (or given seqs) from the tenant's log, with a reason
    /// (owner or super_admin key). Their leaves stay in the tree, so every proof still
    /// verifies; the erasure is itself an event of the log.
    Erase(EraseArgs),
    /// Legal holds: while one is on, retention and erasure skip what it covers.
    #[command(subcommand)]
    Holds(HoldsCommand),
}

/// Whose events: an actor (by id or email) or a target; with none, the whole log.
#[derive(Debug, Args)]
pub(crate) struct SubjectArgs {
    #[arg(long, value_name = "ID")]
    pub(super) actor_id: Option<String>,
    /// Matched without regard to case.
    #[arg(long, value_name = "EMAIL")]
    pub(super) actor_email: Option<String>,
    #[arg(long, value_name = "ID")]
    pub(super) target_id: Option<String>,
}

/// `veritrail retention ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RetentionCommand {
    /// The policy in force, where it comes from, and what retention removed so far.
    Show {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Set the tenant's policy (replacing the server default); give one limit or both.
    Set {
        #[command(flatten)]
        connection: Connection,
        /// Keep events received in the last DAYS days.
        #[arg(long, value_name = "DAYS", required_unless_present = "max_events")]
        max_age_days: Option<u32>,
        /// Keep the newest COUNT events.
        #[arg(long, value_name = "COUNT")]
        max_events: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Drop the tenant's policy: the server default applies again.
    Clear {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Apply the policy now rather than at the next scheduled run.
    Run {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
}

/// `veritrail erase`.
#[derive(Debug, Args)]
pub(crate) struct EraseArgs {
    #[command(flatten)]
    pub(super) connection: Connection,
    #[command(flatten)]
    pub(super) subject: SubjectArgs,
    /// Explicit seqs, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "SEQS")]
    pub(super) seqs: Vec<u64>,
    /// Why (recorded in the log; required).
    #[arg(long)]
    pub(super) reason: String,
    /// Show what would be erased; erase nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
    #[arg(long)]
    pub(super) json: bool,
}

/// `veritrail holds ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum HoldsCommand {
    /// The tenant's legal holds, oldest first.
    List {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Put a hold on a subject's events (or, with no subject, on the whole log).
    Create {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        subject: SubjectArgs,
        /// Why (recorded in the log; required).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Release a hold.
    Release {
        #[command(flatten)]
        connection: Connection,
        hold_id: String,
        #[arg(long)]
        json: bool,
    },
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
/// Service keys (`service-keys`) belong to the deployment.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// List keys, revoked ones included.
    List {
        #[command(flatten)]
        connection: Connection,
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
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key.
    Revoke {
        #[command(flatten)]
        connection: Connection,
        key_id: String,
        #[arg(long)]
        json: bool,
    },
}

/// `veritrail service-keys ...` (server-admin key).
#[derive(Debug, Subcommand)]
pub(crate) enum ServiceKeysCommand {
    /// Create a service key and print its secret (shown only this once).
    Create {
        #[command(flatten)]
        connection: Connection,
        /// service_publisher or service_embedder.
        #[arg(long, value_parser = parse_service_role)]
        role: ServiceRole,
        /// What the key is for.
        #[arg(long)]
        name: Option<String>,
        /// The only tenants it may act on, comma-separated (default: every tenant).
        #[arg(
            long = "tenants",
            value_delimiter = ',',
            conflicts_with = "tenant_prefix"
        )]
        tenants: Vec<String>,
        /// It may act on the tenants whose id starts with this.
        #[arg(long)]
        tenant_prefix: Option<String>,
        /// A service publisher creates a tenant it may act on by writing to it first.
        #[arg(long)]
        create_tenants: bool,
        #[arg(long)]
        json: bool,
    },
    /// List service keys, revoked ones included.
    List {
        #[command(flatten)]
        connection: Connection,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a service key: it authenticates nothing from now on, and the viewer tokens
    /// it minted stop working.
    Revoke {
        #[command(flatten)]
        connection: Connection,
        key_id: String,
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
    pub(super) fn is_empty(&self) -> bool {
        self.types.is_none() && self.categories.is_none() && self.outcomes.is_none()
    }

    /// `filter` with the lists given replaced.
    pub(super) fn apply(self, mut filter: WebhookFilter) -> WebhookFilter {
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
    pub(super) filter: WebhookFilterArgs,
    /// `standard` (Standard Webhooks: `{type, timestamp, data}`, the default) or
    /// `envelope` (user-action notifications as VGS sends them).
    #[arg(long)]
    pub(super) format: Option<String>,
    /// `every_single` (one message per event, the default) or a window like `60s`, `5m`,
    /// `1h` (one message per type and actor per window).
    #[arg(long)]
    pub(super) grouping: Option<String>,
    /// A note for people.
    #[arg(long)]
    pub(super) description: Option<String>,
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

fn parse_service_role(name: &str) -> Result<ServiceRole, String> {
    ServiceRole::parse(name).ok_or_else(|| {
        let names: Vec<&str> = ServiceRole::ALL.iter().map(|role| role.as_str()).collect();
        format!("unknown service role {name:?}; one of {}", names.join(", "))
    })
}
