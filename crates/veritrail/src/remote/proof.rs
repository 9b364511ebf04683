//! `veritrail get`, `checkpoint`, `log-key` and `proof`: a record, and what proves the log
//! (its signed checkpoint, its verifier key, inclusion and consistency proofs).

use std::process::ExitCode;

use anyhow::bail;
use veritrail_client::{Client, LeafRef};

use super::flags::ProofCommand;
use super::output::Out;

/// `veritrail get`: one record by its seq, with `--proof` its inclusion proof too.
pub(super) async fn get(
    client: &Client,
    seq: u64,
    proof: bool,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
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

/// `veritrail checkpoint`: the latest signed checkpoint, as the server sends it.
pub(super) async fn checkpoint(client: &Client, out: &mut Out) -> anyhow::Result<ExitCode> {
    let checkpoint = client.checkpoint().await?;
    out.line(checkpoint.trim_end())?;
    Ok(ExitCode::SUCCESS)
}

/// `veritrail log-key`: the deployment's verifier key and the log's origin.
pub(super) async fn log_key(
    client: &Client,
    json: bool,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let key = client.log_key().await?;
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

/// `veritrail proof inclusion|consistency`: the proof as pretty JSON.
pub(super) async fn proof(command: ProofCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    match command {
        ProofCommand::Inclusion {
            connection,
            seq,
            id,
            tree_size,
        } => {
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
        }
        ProofCommand::Consistency {
            connection,
            from,
            to,
        } => {
            let proof = connection.client()?.consistency_proof(from, to).await?;
            out.line(&serde_json::to_string_pretty(&proof)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
