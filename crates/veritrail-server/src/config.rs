//! The server's configuration: defaults, then a TOML file, then `VERITRAIL_*` environment
//! variables, each overriding the one before. `veritrail.example.toml` at the repository
//! root lists every setting with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Everything the server reads at start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the ledger, the search index, the control plane and the signing key live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Deployment name: names the log signing key; every checkpoint origin is
    /// `<origin>/<tenant>`.
    pub origin: String,
    /// A server-admin key given by the operator, accepted besides the one created at first
    /// start. At least 32 characters.
    pub admin_key: Option<String>,
    pub limits: Limits,
    pub rate_limit: RateLimit,
    pub search: Search,
    pub webhooks: Webhooks,
    pub retention: Retention,
    pub scrub: Scrub,
    pub tenants: Tenants,
}

/// What every new tenant starts with (made by the server admin or, with a service key, on
/// first write).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tenants {
    /// Shared catalogs a new tenant adopts (ids of `GET /api/v1/catalog/shared`).
    pub default_catalogs: Vec<String>,
    /// A new tenant's catalog policy: `lenient` (the default: types no catalog defines are
    /// stored as uncatalogued) or `strict`.
    pub default_policy: veritrail_core::catalog::Policy,
}

/// What one request, connection, key or tenant may cost. Every bound answers with a clear
/// error (a 4xx with a stable code, or 503 with `Retry-After`), never by slowing everyone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most events in one ingest request (413 above).
    pub max_batch_events: usize,
    /// Longest a request may take before a 504, in seconds. Exports and live tails are
    /// exempt (they end when their client stops reading, see `write_timeout_secs`).
    pub request_timeout_secs: u64,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Longest a request's head (request line and headers) may take to arrive, in seconds,
    /// an idle keep-alive connection's next one included: slow or idle clients are dropped.
    pub header_read_timeout_secs: u64,
    /// A connection whose client reads nothing of its answer for this long is closed, in
    /// seconds (an export or live tail that nobody reads ends).
    pub write_timeout_secs: u64,
    /// Largest request head (request line and headers), in bytes (431 above).
    pub max_header_bytes: usize,
    /// Longest request line target (path and query), in bytes (414 above).
    pub max_uri_bytes: usize,
    /// Exports and live tails open at once per API key (or session, or viewer token); 429
    /// above.
    pub max_streams_per_key: usize,
    /// Exports and live tails open at once per tenant, all its keys together; 429 above.
    pub max_streams_per_tenant: usize,
    /// Threads for blocking work (storage reads, searches, counts), all tenants together.
    pub blocking_threads: usize,
    /// Of those, how many one tenant's requests may hold at once: the others wait, so one
    /// tenant's heavy queries cannot starve another's.
    pub blocking_per_tenant: usize,
    /// Words in a search's free text `q` (400 above).
    pub max_query_words: usize,
    /// Prefix words (`pass*`) in a search's free text (400 above).
    pub max_prefix_words: usize,
    /// Index terms one prefix may expand to (400 above: make the prefix longer).
    pub max_prefix_terms: usize,
    /// Values of a list filter, like `type=a,b,c` (400 above).
    pub max_filter_values: usize,
    /// Buckets of a count's histogram (400 above: a narrower range or a wider interval).
    pub max_histogram_buckets: usize,
    /// Viewer tokens alive at once per tenant (429 above: revoke some, or let them expire).
    pub max_viewer_tokens_per_tenant: usize,
    /// Ingest request bodies being read, parsed or committed at once, in bytes (by their
    /// `Content-Length`), at most; one more is refused with 503 `overloaded` and
    /// `Retry-After` before it is parsed.
    pub max_ingest_bytes_in_flight: usize,
    /// The latency of an ingest (admitted to answered) the overload control aims at, in
    /// milliseconds: the number of ingests admitted at once shrinks while the median takes
    /// longer (a standing queue), and grows back when it takes less than half.
    pub ingest_target_latency_ms: u64,
    /// Events waiting for the ledger's sequencer; one more request is refused with 503
    /// `overloaded` (the HTTP bound above normally comes first).
    pub max_queued_events: usize,
    /// Tenants whose ledger files stay open (two descriptors each); the least recently used
    /// close when more are needed, so descriptors do not grow with the tenants.
    pub max_open_tenants: usize,
}

/// Per-key rate limit: a token bucket per API key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second per key; 0 turns rate limiting off.
    pub requests_per_second: u32,
    /// Requests a key may make at once after being idle.
    pub burst: u32,
    /// Requests per minute one viewer token may make to the embedded view (its pages and
    /// records); 0 turns it off.
    pub embed_per_minute: u32,
    /// Events per second one service key may send into one tenant (besides the key's own
    /// request limit), so that one tenant cannot use up a key shared by all; 0 turns it off.
    pub tenant_events_per_second: u32,
    /// Events one service key may send into one tenant at once after it was quiet.
    pub tenant_events_burst: u32,
}

/// The search index.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Search {
    /// How often new events are made searchable, in milliseconds: the search freshness.
    pub commit_interval_ms: u64,
    /// Memory for the index writer, in MiB.
    pub writer_memory_mib: usize,
}

/// Retention: the server's default policy (a tenant may set its own) and the job's pace.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Keep records received in the last this many days (none: no age limit).
    pub max_age_days: Option<u32>,
    /// Keep at most this many of each log's newest records (none: no count limit).
    pub max_events: Option<u64>,
    /// How often the background job applies each tenant's policy, in seconds.
    pub interval_secs: u64,
    /// Journal bytes compaction reads per second at most, so that giving the disk back
    /// after a removal leaves room to ingest and reads.
    pub compaction_bytes_per_second: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age_days: None,
            max_events: None,
            interval_secs: 3600,
            compaction_bytes_per_second: 64 << 20,
        }
    }
}

impl Retention {
    /// The server's default policy.
    pub fn policy(&self) -> veritrail_api::RetentionPolicy {
        veritrail_api::RetentionPolicy {
            max_age_days: self.max_age_days,
            max_events: self.max_events,
        }
    }
}

/// The scrubber: how often it re-verifies the stored logs, and how fast it reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scrub {
    /// Seconds from the end of one pass to the start of the next (the first pass starts
    /// this long after the server does).
    pub interval_secs: u64,
    /// Journal bytes a pass reads per second at most, so that it never crowds out ingest
    /// and reads.
    pub bytes_per_second: u64,
}

impl Default for Scrub {
    fn default() -> Self {
        Self {
            interval_secs: 21_600,
            bytes_per_second: 64 << 20,
        }
    }
}

/// Webhook delivery.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhooks {
    /// Networks (CIDR, like `10.1.0.0/16` or `127.0.0.1/32`) deliveries may go to although
    /// they are loopback, private, link-local, multicast or cloud-metadata addresses, which
    /// are refused otherwise.
    pub allow_networks: Vec<String>,
    /// Longest one delivery attempt may take (connect, send, answer), in milliseconds.
    pub attempt_timeout_ms: u64,
    /// Wait before the first retry, in milliseconds; each retry doubles it.
    pub retry_initial_ms: u64,
    /// Longest wait between retries, in milliseconds.
    pub retry_max_ms: u64,
    /// A subscription whose deliveries have failed without a success for this long is
    /// disabled (with an audit event), in seconds.
    pub disable_after_secs: u64,
    /// Delivery attempts kept per subscription for the attempts API.
    pub attempts_kept: u64,
    /// Most subscriptions per tenant.
    pub max_per_tenant: usize,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            attempt_timeout_ms: 10_000,
            retry_initial_ms: 1_000,
            retry_max_ms: 600_000,
            disable_after_secs: 3 * 24 * 3600,
            attempts_kept: 1_000,
            max_per_tenant: 50,
        }
    }
}

impl Webhooks {
    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("veritrail-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            origin: "veritrail.local".to_owned(),
            admin_key: None,
            limits: Limits::default(),
            rate_limit: RateLimit::default(),
            search: Search::default(),
            webhooks: Webhooks::default(),
            retention: Retention::default(),
            scrub: Scrub::default(),
            tenants: Tenants::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 5 * 1024 * 1024,
            max_batch_events: 1000,
            request_timeout_secs: 30,
            max_connections: 4096,
            header_read_timeout_secs: 10,
            write_timeout_secs: 30,
            max_header_bytes: 64 * 1024,
            max_uri_bytes: 8 * 1024,
            max_streams_per_key: 8,
            max_streams_per_tenant: 32,
            blocking_threads: 64,
            blocking_per_tenant: 8,
            max_query_words: 32,
            max_prefix_words: 4,
            max_prefix_terms: 10_000,
            max_filter_values: 32,
            max_histogram_buckets: 10_000,
            max_viewer_tokens_per_tenant: 10_000,
            max_ingest_bytes_in_flight: 4 * 1024 * 1024,
            ingest_target_latency_ms: 10,
            max_queued_events: veritrail_ledger::ledger::DEFAULT_MAX_QUEUED_EVENTS,
            max_open_tenants: 1024,
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests_per_second: 5000,
            burst: 10_000,
            embed_per_minute: 120,
            tenant_events_per_second: 10_000,
            tenant_events_burst: 20_000,
        }
    }
}

impl Default for Search {
    fn default() -> Self {
        Self {
            commit_interval_ms: 500,
            writer_memory_mib: 64,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?} is invalid: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the TOML file at `path` when given, then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.check()?;
        Ok(config)
    }

    /// Parses a TOML file (unset settings keep their defaults).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }

    /// Overrides settings from `VERITRAIL_*` variables, read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|err: T::Err| ConfigError::Env {
                name,
                message: err.to_string(),
                value,
            })
        }
        if let Some(value) = var("VERITRAIL_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = var("VERITRAIL_LISTEN") {
            self.listen = parse("VERITRAIL_LISTEN", value)?;
        }
        if let Some(value) = var("VERITRAIL_ORIGIN") {
            self.origin = value;
        }
        if let Some(value) = var("VERITRAIL_ADMIN_KEY") {
            self.admin_key = Some(value);
        }
        if let Some(value) = var("VERITRAIL_MAX_BODY_BYTES") {
            self.limits.max_body_bytes = parse("VERITRAIL_MAX_BODY_BYTES", value)?;
        }
        if let Some(value) = var("VERITRAIL_MAX_BATCH_EVENTS") {
            self.limits.max_batch_events = parse("VERITRAIL_MAX_BATCH_EVENTS", value)?;
        }
        if let Some(value) = var("VERITRAIL_REQUEST_TIMEOUT_SECS") {
            self.limits.request_timeout_secs = parse("VERITRAIL_REQUEST_TIMEOUT_SECS", value)?;
        }
        if let Some(value) = var("VERITRAIL_MAX_INGEST_BYTES_IN_FLIGHT") {
            self.limits.max_ingest_bytes_in_flight =
                parse("VERITRAIL_MAX_INGEST_BYTES_IN_FLIGHT", value)?;
        }
        if let Some(value) = var("VERITRAIL_INGEST_TARGET_LATENCY_MS") {
            self.limits.ingest_target_latency_ms =
                parse("VERITRAIL_INGEST_TARGET_LATENCY_MS", value)?;
        }
        if let Some(value) = var("VERITRAIL_RATE_LIMIT_RPS") {
            self.rate_limit.requests_per_second = parse("VERITRAIL_RATE_LIMIT_RPS", value)?;
        }
        if let Some(value) = var("VERITRAIL_RATE_LIMIT_BURST") {
            self.rate_limit.burst = parse("VERITRAIL_RATE_LIMIT_BURST", value)?;
        }
        if let Some(value) = var("VERITRAIL_RATE_LIMIT_TENANT_EVENTS") {
            self.rate_limit.tenant_events_per_second =
                parse("VERITRAIL_RATE_LIMIT_TENANT_EVENTS", value)?;
        }
        if let Some(value) = var("VERITRAIL_DEFAULT_CATALOGS") {
            self.tenants.default_catalogs = value
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(value) = var("VERITRAIL_SEARCH_COMMIT_MS") {
            self.search.commit_interval_ms = parse("VERITRAIL_SEARCH_COMMIT_MS", value)?;
        }
        if let Some(value) = var("VERITRAIL_RETENTION_MAX_AGE_DAYS") {
            self.retention.max_age_days = Some(parse("VERITRAIL_RETENTION_MAX_AGE_DAYS", value)?);
        }
        if let Some(value) = var("VERITRAIL_RETENTION_MAX_EVENTS") {
            self.retention.max_events = Some(parse("VERITRAIL_RETENTION_MAX_EVENTS", value)?);
        }
        if let Some(value) = var("VERITRAIL_RETENTION_INTERVAL_SECS") {
            self.retention.interval_secs = parse("VERITRAIL_RETENTION_INTERVAL_SECS", value)?;
        }
        if let Some(value) = var("VERITRAIL_COMPACTION_BYTES_PER_SECOND") {
            self.retention.compaction_bytes_per_second =
                parse("VERITRAIL_COMPACTION_BYTES_PER_SECOND", value)?;
        }
        if let Some(value) = var("VERITRAIL_SCRUB_INTERVAL_SECS") {
            self.scrub.interval_secs = parse("VERITRAIL_SCRUB_INTERVAL_SECS", value)?;
        }
        if let Some(value) = var("VERITRAIL_SCRUB_BYTES_PER_SECOND") {
            self.scrub.bytes_per_second = parse("VERITRAIL_SCRUB_BYTES_PER_SECOND", value)?;
        }
        if let Some(value) = var("VERITRAIL_WEBHOOKS_ALLOW_NETWORKS") {
            self.webhooks.allow_networks = value
                .split(',')
                .map(str::trim)
                .filter(|net| !net.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(())
    }

    /// Rejects settings that cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        let max_events = veritrail_ledger::ledger::DEFAULT_MAX_BATCH_EVENTS;
        if self.limits.max_batch_events == 0 || self.limits.max_batch_events > max_events {
            return Err(ConfigError::Invalid(format!(
                "limits.max_batch_events must be between 1 and {max_events}"
            )));
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_body_bytes must be at least 1024".into(),
            ));
        }
        let limits = &self.limits;
        for (name, value) in [
            ("request_timeout_secs", limits.request_timeout_secs),
            ("header_read_timeout_secs", limits.header_read_timeout_secs),
            ("write_timeout_secs", limits.write_timeout_secs),
            ("ingest_target_latency_ms", limits.ingest_target_latency_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "limits.{name} must be at least 1"
                )));
            }
        }
        for (name, value) in [
            ("max_connections", limits.max_connections),
            ("max_streams_per_key", limits.max_streams_per_key),
            ("max_streams_per_tenant", limits.max_streams_per_tenant),
            ("blocking_threads", limits.blocking_threads),
            ("blocking_per_tenant", limits.blocking_per_tenant),
            ("max_query_words", limits.max_query_words),
            ("max_prefix_terms", limits.max_prefix_terms),
            ("max_filter_values", limits.max_filter_values),
            ("max_open_tenants", limits.max_open_tenants),
            ("max_histogram_buckets", limits.max_histogram_buckets),
            (
                "max_viewer_tokens_per_tenant",
                limits.max_viewer_tokens_per_tenant,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "limits.{name} must be at least 1"
                )));
            }
        }
        if limits.max_header_bytes < 8192 || limits.max_uri_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_header_bytes must be at least 8192 and limits.max_uri_bytes at least 1024".into(),
            ));
        }
        if limits.max_uri_bytes > limits.max_header_bytes {
            return Err(ConfigError::Invalid(
                "limits.max_uri_bytes cannot be more than limits.max_header_bytes (the request line is part of the head)".into(),
            ));
        }
        if limits.max_ingest_bytes_in_flight < 64 * 1024 {
            return Err(ConfigError::Invalid(
                "limits.max_ingest_bytes_in_flight must be at least 65536".into(),
            ));
        }
        if limits.blocking_per_tenant > limits.blocking_threads {
            return Err(ConfigError::Invalid(
                "limits.blocking_per_tenant cannot be more than limits.blocking_threads".into(),
            ));
        }
        if self.retention.interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "retention.interval_secs must be at least 1".into(),
            ));
        }
        if self.retention.compaction_bytes_per_second < 1 << 20 {
            return Err(ConfigError::Invalid(
                "retention.compaction_bytes_per_second must be at least 1048576 (1 MiB)".into(),
            ));
        }
        if self.scrub.interval_secs == 0 || self.scrub.bytes_per_second < 1 << 20 {
            return Err(ConfigError::Invalid(
                "scrub.interval_secs must be at least 1 and scrub.bytes_per_second at least \
                 1048576 (1 MiB)"
                    .into(),
            ));
        }
        crate::lifecycle::check_policy(&self.retention.policy())
            .map_err(|err| ConfigError::Invalid(format!("retention: {err}")))?;
        if self.rate_limit.requests_per_second > 0 && self.rate_limit.burst == 0 {
            return Err(ConfigError::Invalid(
                "rate_limit.burst must be at least 1 when rate limiting is on".into(),
            ));
        }
        if self.search.commit_interval_ms == 0 || self.search.commit_interval_ms > 60_000 {
            return Err(ConfigError::Invalid(
                "search.commit_interval_ms must be between 1 and 60000".into(),
            ));
        }
        for net in &self.webhooks.allow_networks {
            crate::webhooks::net::Network::parse(net)
                .map_err(|why| ConfigError::Invalid(format!("webhooks.allow_networks: {why}")))?;
        }
        let hooks = &self.webhooks;
        if hooks.attempt_timeout_ms == 0
            || hooks.retry_initial_ms == 0
            || hooks.retry_max_ms < hooks.retry_initial_ms
            || hooks.attempts_kept == 0
        {
            return Err(ConfigError::Invalid(
                "webhooks: attempt_timeout_ms and retry_initial_ms must be at least 1, retry_max_ms at least retry_initial_ms, attempts_kept at least 1".into(),
            ));
        }
        if let Some(key) = &self.admin_key
            && key.len() < 32
        {
            return Err(ConfigError::Invalid(
                "admin_key must be at least 32 characters".into(),
            ));
        }
        if self.origin.is_empty() || self.origin.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid(
                "origin must be a name without spaces, like audit.example.com".into(),
            ));
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.request_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let mut config = Config::from_toml(
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_batch_events = 10\n[rate_limit]\nburst = 7\n",
        )
        .expect("valid toml");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.max_batch_events, 10);
        assert_eq!(
            config.limits.max_body_bytes,
            Limits::default().max_body_bytes
        );
        config
            .apply_env(|name| (name == "VERITRAIL_MAX_BATCH_EVENTS").then(|| "20".to_owned()))
            .expect("valid env");
        assert_eq!(config.limits.max_batch_events, 20);
        assert_eq!(config.rate_limit.burst, 7);
    }

    #[test]
    fn unknown_settings_and_bad_values_are_errors_that_name_them() {
        let err = Config::from_toml("listn = \"x\"").expect_err("unknown key");
        assert!(err.contains("listn"), "{err}");
        let err = Config::default()
            .apply_env(|name| (name == "VERITRAIL_LISTEN").then(|| "nowhere".to_owned()))
            .expect_err("bad address");
        assert!(err.to_string().contains("VERITRAIL_LISTEN"), "{err}");
        let config = Config {
            limits: Limits {
                max_batch_events: 0,
                ..Limits::default()
            },
            ..Config::default()
        };
        assert!(config.check().is_err());
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let example = include_str!("../../../veritrail.example.toml");
        let config = Config::from_toml(example).expect("the example parses");
        assert_eq!(config, Config::default());
    }
}
