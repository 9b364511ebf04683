//! The PostgreSQL baseline of the HTTP benchmark: the same events and queries against a
//! plain audit table with the indexes a team would create, over tokio-postgres.
//!
//! ```sql
//! audit_events(seq bigint identity primary key, tenant, id, type, category, actor_id,
//!   actor_email, outcome, occurred_at timestamptz, received_at timestamptz default now(),
//!   summary, details jsonb, context jsonb,
//!   doc tsvector generated always as (type, summary, actor_email and the string values
//!   of details, 'simple' configuration) stored)
//! unique (tenant, id); (tenant, occurred_at desc); (tenant, type, occurred_at desc);
//! (tenant, category, occurred_at desc); (tenant, actor_id); gin (doc)
//! ```
//!
//! `category` is the type family (`auth`, `billing`, ...): veritrail's `type=auth.*`
//! matches the same events as `category = 'auth'` here. `context` holds what the event has
//! beyond the columns (actor name and ip, the target, the source), so
//! both systems store the same information.
//!
//! Ingest is one multi-row `INSERT` of `batch` rows per statement (autocommit: one
//! transaction, one WAL flush each), or one single-row `INSERT` per statement. The preload
//! is `COPY` (two streams), then the secondary indexes are built and `VACUUM (ANALYZE)` runs;
//! none of it is measured.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use crate::Workload;
use crate::load::{self, PhaseResult, Worker, finish};
use crate::synth::{self, Event, QueryKind, QuerySpec};

const SYSTEM: &str = "postgresql";

const COLUMNS: &str = "tenant, id, type, category, actor_id, actor_email, outcome, occurred_at, summary, details, context";
const N_COLUMNS: usize = 11;

const SCHEMA: &str = "
DROP TABLE IF EXISTS audit_events;
CREATE TABLE audit_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant text NOT NULL,
    id text NOT NULL,
    type text NOT NULL,
    category text NOT NULL,
    actor_id text,
    actor_email text,
    outcome text NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    summary text,
    details jsonb,
    context jsonb,
    doc tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', type || ' ' || coalesce(summary, '') || ' ' || coalesce(actor_email, ''))
        || jsonb_to_tsvector('simple', coalesce(details, '{}'), '[\"string\"]')
    ) STORED
);
";

/// Built after the preload (faster than maintaining them during `COPY`), before anything
/// is measured.
const INDEXES: [&str; 6] = [
    "CREATE UNIQUE INDEX audit_events_tenant_id ON audit_events (tenant, id)",
    "CREATE INDEX audit_events_tenant_time ON audit_events (tenant, occurred_at DESC)",
    "CREATE INDEX audit_events_tenant_type_time ON audit_events (tenant, type, occurred_at DESC)",
    "CREATE INDEX audit_events_tenant_category_time ON audit_events (tenant, category, occurred_at DESC)",
    "CREATE INDEX audit_events_tenant_actor ON audit_events (tenant, actor_id)",
    "CREATE INDEX audit_events_doc ON audit_events USING gin (doc)",
];

const SELECT: &str = "SELECT seq, id, type, category, actor_id, actor_email, outcome, occurred_at, received_at, summary, details, context FROM audit_events";

async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn time_of(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// One connection inserting `batch` rows per statement.
struct InsertWorker {
    client: Client,
    statement: Statement,
    tenant: String,
    stream: String,
    batch: u64,
    events: Vec<Event>,
    times: Vec<SystemTime>,
}

impl InsertWorker {
    async fn new(url: &str, tenant: &str, stream: &str, batch: u64) -> anyhow::Result<Self> {
        let client = connect(url).await?;
        let rows: Vec<String> = (0..batch)
            .map(|row| {
                let p = |col: u64| row * N_COLUMNS as u64 + col;
                format!(
                    "(${},${},${},${},${},${},${},${},${},${}::text::jsonb,${}::text::jsonb)",
                    p(1),
                    p(2),
                    p(3),
                    p(4),
                    p(5),
                    p(6),
                    p(7),
                    p(8),
                    p(9),
                    p(10),
                    p(11)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES {}",
            rows.join(",")
        );
        let statement = client.prepare(&sql).await?;
        let n = usize::try_from(batch)?;
        Ok(Self {
            client,
            statement,
            tenant: tenant.to_owned(),
            stream: stream.to_owned(),
            batch,
            events: vec![Event::default(); n],
            times: vec![SystemTime::UNIX_EPOCH; n],
        })
    }
}

impl Worker for InsertWorker {
    fn prepare(&mut self, i: u64) -> anyhow::Result<()> {
        for (k, (event, time)) in self.events.iter_mut().zip(&mut self.times).enumerate() {
            event.fill(&self.stream, i * self.batch + k as u64);
            event.fill_context();
            *time = time_of(event.occurred_at_ms);
        }
        Ok(())
    }

    async fn call(&mut self) -> anyhow::Result<u64> {
        let mut params: Vec<&(dyn ToSql + Sync)> =
            Vec::with_capacity(self.events.len() * N_COLUMNS);
        for (event, time) in self.events.iter().zip(&self.times) {
            params.push(&self.tenant);
            params.push(&event.id);
            params.push(&event.event_type);
            params.push(&synth::FAMILIES[event.family]);
            params.push(&event.actor_id);
            params.push(&event.actor_email);
            params.push(&event.outcome);
            params.push(time);
            params.push(&event.summary);
            params.push(&event.details);
            params.push(&event.context);
        }
        let n = self.client.execute(&self.statement, &params).await?;
        anyhow::ensure!(n == self.batch, "inserted {n} rows of {}", self.batch);
        Ok(n)
    }
}

/// One connection asking query `i` of `kind`.
struct QueryWorker {
    client: Client,
    statement: Statement,
    tenant: String,
    kind: QueryKind,
    spec: QuerySpec,
}

impl QueryWorker {
    async fn new(url: &str, tenant: &str, kind: QueryKind) -> anyhow::Result<Self> {
        let client = connect(url).await?;
        let sql = match kind {
            QueryKind::Filtered => format!(
                "{SELECT} WHERE tenant = $1 AND category = $2 AND occurred_at >= $3 AND occurred_at < $4 ORDER BY occurred_at DESC LIMIT 50"
            ),
            QueryKind::TextOne | QueryKind::TextTwo => format!(
                "{SELECT} WHERE tenant = $1 AND doc @@ plainto_tsquery('simple', $2) ORDER BY occurred_at DESC LIMIT 50"
            ),
            QueryKind::Count => "SELECT category, count(*) FROM audit_events WHERE tenant = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY category".to_owned(),
            QueryKind::Categories => "SELECT category, type, count(*) FROM audit_events WHERE tenant = $1 GROUP BY category, type".to_owned(),
        };
        let statement = client.prepare(&sql).await?;
        Ok(Self {
            client,
            statement,
            tenant: tenant.to_owned(),
            kind,
            spec: QuerySpec::Text { words: Vec::new() },
        })
    }
}

impl Worker for QueryWorker {
    fn prepare(&mut self, i: u64) -> anyhow::Result<()> {
        self.spec = self.kind.query(i);
        Ok(())
    }

    async fn call(&mut self) -> anyhow::Result<u64> {
        match &self.spec {
            QuerySpec::Filtered {
                family,
                from_ms,
                to_ms,
            } => {
                let rows = self
                    .client
                    .query(
                        &self.statement,
                        &[
                            &self.tenant,
                            &synth::FAMILIES[*family],
                            &time_of(*from_ms),
                            &time_of(*to_ms),
                        ],
                    )
                    .await?;
                Ok(rows.len() as u64)
            }
            QuerySpec::Text { words } => {
                let rows = self
                    .client
                    .query(&self.statement, &[&self.tenant, &words.join(" ")])
                    .await?;
                Ok(rows.len() as u64)
            }
            QuerySpec::CountByFamily { from_ms, to_ms } => {
                let rows = self
                    .client
                    .query(
                        &self.statement,
                        &[&self.tenant, &time_of(*from_ms), &time_of(*to_ms)],
                    )
                    .await?;
                let mut total = 0u64;
                for row in rows {
                    total += u64::try_from(row.try_get::<_, i64>(1)?)?;
                }
                Ok(total)
            }
            QuerySpec::Categories => {
                let rows = self.client.query(&self.statement, &[&self.tenant]).await?;
                let mut total = 0u64;
                for row in rows {
                    total += u64::try_from(row.try_get::<_, i64>(2)?)?;
                }
                Ok(total)
            }
        }
    }
}

/// `COPY`s events `range` of the preload stream.
async fn copy_range(url: &str, tenant: &str, range: std::ops::Range<u64>) -> anyhow::Result<()> {
    let client = connect(url).await?;
    let sink = client
        .copy_in::<_, Bytes>(&format!("COPY audit_events ({COLUMNS}) FROM STDIN"))
        .await?;
    let mut sink = std::pin::pin!(sink);
    let mut event = Event::default();
    let mut chunk = String::with_capacity(1 << 20);
    for n in range {
        event.fill("pre", n);
        event.fill_context();
        for (k, field) in [
            tenant,
            &event.id,
            &event.event_type,
            synth::FAMILIES[event.family],
            &event.actor_id,
            &event.actor_email,
            event.outcome,
            &event.occurred_at,
            &event.summary,
            &event.details,
            &event.context,
        ]
        .into_iter()
        .enumerate()
        {
            if k > 0 {
                chunk.push('\t');
            }
            // The generated text has no tab, newline or backslash to escape.
            chunk.push_str(field);
        }
        chunk.push('\n');
        if chunk.len() >= 1 << 20 {
            sink.send(Bytes::from(std::mem::take(&mut chunk))).await?;
            chunk.reserve(1 << 20);
        }
    }
    if !chunk.is_empty() {
        sink.send(Bytes::from(chunk)).await?;
    }
    sink.finish().await?;
    Ok(())
}

/// The whole PostgreSQL run: schema, preload, searches, ingest; one result per phase.
pub(crate) async fn run(url: &str, workload: &Workload) -> anyhow::Result<Vec<PhaseResult>> {
    let pid = workload.server_pid;
    let tenant = workload.tenant.as_str();
    let mut results = Vec::new();
    let admin = connect(url).await?;
    admin.batch_execute(SCHEMA).await?;

    // Preload: COPY in two streams, then indexes and statistics; set-up, not measured.
    let client_cpu = load::own_cpu_secs();
    let server_cpu = load::tree_cpu_secs(pid);
    let started = Instant::now();
    let streams = workload.preload_connections.clamp(1, 2) as u64;
    let per_stream = workload.events.div_ceil(streams);
    let copies = (0..streams).map(|s| {
        let first = s * per_stream;
        let last = ((s + 1) * per_stream).min(workload.events);
        copy_range(url, tenant, first..last)
    });
    for copied in futures_util::future::join_all(copies).await {
        copied?;
    }
    let copy_secs = started.elapsed().as_secs_f64();
    let index_started = Instant::now();
    // Two connections build the indexes (each build may also use parallel workers).
    let second = connect(url).await?;
    let (first_half, second_half) = INDEXES.split_at(INDEXES.len() / 2);
    let build = async |client: &Client, statements: &[&str]| -> anyhow::Result<()> {
        client
            .batch_execute("SET maintenance_work_mem = '1GB'")
            .await?;
        for statement in statements {
            client.batch_execute(statement).await?;
        }
        Ok(())
    };
    let (a, b) = tokio::join!(build(&admin, first_half), build(&second, second_half));
    a?;
    b?;
    let index_secs = index_started.elapsed().as_secs_f64();
    let vacuum_started = Instant::now();
    admin.batch_execute("VACUUM (ANALYZE) audit_events").await?;
    let vacuum_secs = vacuum_started.elapsed().as_secs_f64();
    let size: i64 = admin
        .query_one("SELECT pg_total_relation_size('audit_events')", &[])
        .await?
        .get(0);
    let preload = PhaseResult {
        system: SYSTEM.to_owned(),
        key: "preload".to_owned(),
        name: "preload: COPY, then indexes, then VACUUM ANALYZE (set-up, not a bar)".to_owned(),
        connections: usize::try_from(streams)?,
        requests: 0,
        events: workload.events,
        secs: started.elapsed().as_secs_f64(),
        client_cpu_s: load::own_cpu_secs() - client_cpu,
        server_cpu_s: load::tree_cpu_secs(pid) - server_cpu,
        note: format!(
            "COPY {copy_secs:.1} s ({:.0} rows/s), indexes {index_secs:.1} s, vacuum analyze {vacuum_secs:.1} s; table with indexes {:.2} GiB",
            workload.events as f64 / copy_secs,
            size as f64 / f64::from(1 << 30)
        ),
        ..PhaseResult::default()
    };
    finish(workload.out.as_deref(), &mut results, preload)?;
    admin.batch_execute("CHECKPOINT").await?;
    tokio::time::sleep(Duration::from_secs(workload.settle_secs)).await;

    for kind in workload.query_kinds() {
        let mut workers = Vec::new();
        for _ in 0..workload.search_connections {
            workers.push(QueryWorker::new(url, tenant, kind).await?);
        }
        let workers = load::warm_up(workers, workload.warmup_secs).await?;
        let mut result = load::run_phase(
            SYSTEM,
            kind.key(),
            kind.name(),
            workers,
            workload.search_bounds(),
            pid,
        )
        .await?;
        result.note = format!(
            "{:.1} results/query",
            result.events as f64 / result.requests.max(1) as f64
        );
        finish(workload.out.as_deref(), &mut results, result)?;
    }

    for (key, name, connections, batch) in workload.ingest_phases() {
        let mut workers = Vec::new();
        for _ in 0..connections {
            workers.push(InsertWorker::new(url, tenant, key, batch.max(1)).await?);
        }
        let result =
            load::run_phase(SYSTEM, key, &name, workers, workload.ingest_bounds(), pid).await?;
        finish(workload.out.as_deref(), &mut results, result)?;
        tokio::time::sleep(Duration::from_secs(workload.settle_secs)).await;
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filtered_query_is_about_a_fifth_of_a_week() {
        let QuerySpec::Filtered { from_ms, to_ms, .. } = QueryKind::Filtered.query(3) else {
            panic!("a filtered query");
        };
        assert_eq!(to_ms - from_ms, 7 * 86_400_000);
        assert!(from_ms >= (synth::END_UNIX - synth::SPAN_SECS) * 1000);
        assert!(to_ms <= synth::END_UNIX * 1000);
    }
}
