//! `veritrail webhooks ...`: the tenant's webhook subscriptions, with the text of a
//! subscription, of its filter and of its delivery attempts.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;
use veritrail_api::{
    WebhookAttempt, WebhookAttemptParams, WebhookBody, WebhookFilter, WebhookInput, WebhookPatch,
    WebhookRedeliverInput, WebhookRotateInput,
};

use super::flags::WebhooksCommand;
use super::output::{Out, plural, shorten, table};

/// `veritrail webhooks ...`.
pub(super) async fn webhooks(command: WebhooksCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
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
