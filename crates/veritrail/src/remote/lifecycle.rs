//! `veritrail retention ...`, `veritrail erase` and `veritrail holds ...`: how long the
//! tenant's log keeps events, erasing one subject's events, and the legal holds that stop
//! both.

use std::process::ExitCode;

use veritrail_api::{
    ErasureInput, HoldBody, HoldInput, RetentionBody, RetentionPolicy, RetentionRun, SubjectFilter,
};

use super::flags::{EraseArgs, HoldsCommand, RetentionCommand};
use super::output::{Out, plural, table};

/// `veritrail retention ...`.
pub(super) async fn retention(
    command: RetentionCommand,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let (body, json) = match command {
        RetentionCommand::Show { connection, json } => {
            (connection.client()?.retention().await?, json)
        }
        RetentionCommand::Set {
            connection,
            max_age_days,
            max_events,
            json,
        } => {
            let policy = RetentionPolicy {
                max_age_days,
                max_events,
            };
            (connection.client()?.set_retention(&policy).await?, json)
        }
        RetentionCommand::Clear { connection, json } => {
            (connection.client()?.clear_retention().await?, json)
        }
        RetentionCommand::Run { connection, json } => {
            let run = connection.client()?.run_retention().await?;
            if json {
                out.line(&serde_json::to_string(&run)?)?;
            } else {
                out.line(&run_text(&run))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    if json {
        out.line(&serde_json::to_string(&body)?)?;
    } else {
        out.line(&retention_text(&body))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn policy_text(policy: &RetentionPolicy) -> String {
    let mut parts = Vec::new();
    if let Some(days) = policy.max_age_days {
        parts.push(format!(
            "events received in the last {}",
            plural(u64::from(days), "day")
        ));
    }
    if let Some(count) = policy.max_events {
        parts.push(format!("the newest {}", plural(count, "event")));
    }
    if parts.is_empty() {
        "keep everything".to_owned()
    } else {
        format!("keep {}", parts.join(" and "))
    }
}

fn retention_text(body: &RetentionBody) -> String {
    let mut text = format!(
        "policy: {} ({}), applied every {}s\nremoved: {} (retention below seq {})",
        policy_text(&body.policy),
        body.source,
        body.interval_seconds,
        plural(body.removed_count, "event"),
        body.removed_below,
    );
    if let Some(run) = &body.last_run {
        text.push_str(&format!("\nlast run: {}", run_text(run)));
    }
    text
}

fn run_text(run: &RetentionRun) -> String {
    let mut text = format!(
        "{}: removed {} below seq {}",
        run.at,
        plural(run.removed, "event"),
        run.below_seq
    );
    if run.skipped_held > 0 {
        text.push_str(&format!(
            ", kept {} under a legal hold",
            plural(run.skipped_held, "event")
        ));
    }
    if let Some(seq) = run.recorded_as {
        text.push_str(&format!(" (recorded as seq {seq})"));
    }
    text
}

/// `veritrail erase`.
pub(super) async fn erase(args: EraseArgs, out: &mut Out) -> anyhow::Result<ExitCode> {
    let input = ErasureInput {
        actor_id: args.subject.actor_id,
        actor_email: args.subject.actor_email,
        target_id: args.subject.target_id,
        seqs: args.seqs,
        reason: args.reason,
        dry_run: args.dry_run,
    };
    let erased = args.connection.client()?.erase(&input).await?;
    if args.json {
        out.line(&serde_json::to_string(&erased)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let seqs = erased
        .seqs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = if erased.dry_run {
        format!("would erase {}", plural(erased.count, "event"))
    } else {
        format!("erased {}", plural(erased.count, "event"))
    };
    if !seqs.is_empty() {
        text.push_str(&format!(": seqs {seqs}"));
    }
    if let Some(seq) = erased.recorded_as {
        text.push_str(&format!(" (recorded as seq {seq})"));
    }
    if erased.remaining > 0 {
        text.push_str(&format!(
            "\n{} more match: run it again",
            plural(erased.remaining, "event")
        ));
    }
    out.line(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `veritrail holds ...`.
pub(super) async fn holds(command: HoldsCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    let (hold, json) = match command {
        HoldsCommand::List { connection, json } => {
            let list = connection.client()?.holds().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows = vec![["ID", "COVERS", "REASON", "CREATED", "BY"].map(str::to_owned)];
                for hold in &list.holds {
                    rows.push([
                        hold.hold_id.clone(),
                        subject_text(&hold.subject),
                        hold.reason.clone(),
                        hold.created_at.clone(),
                        hold.created_by.clone(),
                    ]);
                }
                out.line(&table(&rows))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        HoldsCommand::Create {
            connection,
            subject,
            reason,
            json,
        } => {
            let input = HoldInput {
                actor_id: subject.actor_id,
                actor_email: subject.actor_email,
                target_id: subject.target_id,
                reason,
            };
            (connection.client()?.create_hold(&input).await?, json)
        }
        HoldsCommand::Release {
            connection,
            hold_id,
            json,
        } => (connection.client()?.release_hold(&hold_id).await?, json),
    };
    if json {
        out.line(&serde_json::to_string(&hold)?)?;
    } else {
        out.line(&hold_text(&hold))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn hold_text(hold: &HoldBody) -> String {
    format!(
        "hold {} on {}: {} (by {} at {})",
        hold.hold_id,
        subject_text(&hold.subject),
        hold.reason,
        hold.created_by,
        hold.created_at
    )
}

fn subject_text(subject: &SubjectFilter) -> String {
    let parts: Vec<String> = [
        ("actor", &subject.actor_id),
        ("actor email", &subject.actor_email),
        ("target", &subject.target_id),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_ref().map(|value| format!("{name} {value}")))
    .collect();
    if parts.is_empty() {
        "the whole log".to_owned()
    } else {
        parts.join(", ")
    }
}
