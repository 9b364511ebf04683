//! `veritrail search`, `tail` and `count`: the filters turned into query parameters, the
//! events table (paged or as records come) and the count text.

use std::process::ExitCode;

use serde_json::Value;
use veritrail_api::{BundleParams, CountParams, CountResponse, ExportParams, SearchParams};
use veritrail_client::Client;

use super::flags::Filters;
use super::output::{Out, plural, shorten};

/// A `$params` (search or count parameters, which share the filter fields) of the
/// command's filters and the other `$field`s.
macro_rules! with_filters {
    ($params:ident, $filters:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let filters: Filters = $filters;
        $params {
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
            $($field: $value),*
        }
    }};
}

/// The query of `search` and `tail`.
pub(super) fn search_params(
    filters: Filters,
    limit: Option<u32>,
    order: Option<String>,
    cursor: Option<String>,
) -> SearchParams {
    with_filters!(SearchParams, filters, {
        order: order,
        limit: limit.map(|limit| limit.to_string()),
        cursor: cursor,
    })
}

/// The query of `export --format jsonl|csv|ocsf`.
pub(super) fn export_params(filters: Filters, format: String) -> ExportParams {
    with_filters!(ExportParams, filters, { format: Some(format), after_seq: None })
}

/// The query of `export --format bundle`: a filtered bundle when any filter is given.
pub(super) fn bundle_params(filters: Filters) -> BundleParams {
    with_filters!(BundleParams, filters, {})
}

fn count_params(
    filters: Filters,
    group_by: Option<String>,
    interval: Option<String>,
) -> CountParams {
    with_filters!(CountParams, filters, { group_by: group_by, interval: interval })
}

/// `veritrail search`: one page of matching records, or with `--all` every page.
pub(super) async fn search(
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
pub(super) async fn tail(
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

/// `veritrail count`: the total, the groups or the histogram.
pub(super) async fn count(
    client: &Client,
    filters: Filters,
    group_by: Option<String>,
    interval: Option<String>,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let params = count_params(filters, group_by, interval);
    let response = client.count(&params).await?;
    if json {
        out.line(&serde_json::to_string(&response)?)?;
    } else {
        out.line(&count_text(&response))?;
    }
    Ok(ExitCode::SUCCESS)
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
