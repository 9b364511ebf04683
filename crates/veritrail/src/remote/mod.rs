//! The client commands of the `veritrail` tool: they talk to a veritrail server over its
//! HTTP API with `veritrail-client` (`send`, `search`, `tail`, `count`, `get`, `checkpoint`,
//! `log-key`, `proof`, `export`, `me`, `keys`, `tenants`, `catalog`, `webhooks`, `retention`,
//! `erase`, `holds`), and verify
//! an export bundle offline ([`verify_export_command`]).
//!
//! Output is for people by default (aligned tables) and for scripts with `--json`. Exit
//! codes: 0 done, 1 the server refused (a 4xx), a send had rejected events, or a bundle
//! has faults; 2 it could not run (no server, bad arguments, a 5xx).
//!
//! # Layout
//!
//! - This file: [`Connection`], the dispatcher [`run`] and how a refusal is reported.
//! - `flags.rs`: the command line: every subcommand and its arguments.
//! - `send.rs`: `send`.
//! - `search.rs`: `search`, `tail` and `count`.
//! - `proof.rs`: `get`, `checkpoint`, `log-key` and `proof`.
//! - `export.rs`: `export` (filtered events as JSON Lines or CSV, or the bundle), and
//!   `verify --export` offline.
//! - `keys.rs`: `me` and `keys`.
//! - `tenants.rs`, `catalog.rs`, `webhooks.rs`: those command groups.
//! - `lifecycle.rs`: `retention`, `erase` and `holds`.
//! - `output.rs`: the standard output writer [`Out`] and table helpers.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use veritrail_client::{BatchError, Client, ClientError};

mod catalog;
mod export;
mod flags;
mod keys;
mod lifecycle;
mod output;
mod proof;
mod search;
mod send;
mod tenants;
mod webhooks;

pub(crate) use export::verify_export_command;
pub(crate) use flags::RemoteCommand;

use output::Out;

/// Where the server is and which key to present.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The server's base URL (http or https, optionally with a path prefix).
    #[arg(long, env = "VERITRAIL_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The API key (`vt_...`): a tenant key, a service key, or the server-admin key.
    #[arg(long, env = "VERITRAIL_KEY", hide_env_values = true)]
    key: String,
    /// The tenant to act on: with a service key, the customer whose log, catalog or viewer
    /// tokens the command is for; with the server-admin key, whose keys `keys` manages.
    #[arg(long, env = "VERITRAIL_TENANT")]
    tenant: Option<String>,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.url, &self.key).context("cannot set up the client")?;
        Ok(match &self.tenant {
            Some(tenant) => client.for_tenant(tenant),
            None => client,
        })
    }
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
    let out = &mut out;
    match command {
        RemoteCommand::Send {
            connection,
            file,
            searchable,
            batch_size,
            json,
        } => {
            let options = send::options(batch_size, searchable);
            send::send(&connection.client()?, options, file.as_deref(), json, out).await
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
            let params = search::search_params(filters, limit, order, cursor);
            search::search(&connection.client()?, params, all, json, out).await
        }
        RemoteCommand::Tail {
            connection,
            filters,
            from_seq,
            json,
        } => {
            let params = search::search_params(filters, None, None, None);
            search::tail(&connection.client()?, params, from_seq, json, out).await
        }
        RemoteCommand::Count {
            connection,
            filters,
            group_by,
            interval,
            json,
        } => {
            search::count(
                &connection.client()?,
                filters,
                group_by,
                interval,
                json,
                out,
            )
            .await
        }
        RemoteCommand::Get {
            connection,
            seq,
            proof,
            json,
        } => proof::get(&connection.client()?, seq, proof, json, out).await,
        RemoteCommand::Checkpoint { connection } => {
            proof::checkpoint(&connection.client()?, out).await
        }
        RemoteCommand::LogKey { connection, json } => {
            proof::log_key(&connection.client()?, json, out).await
        }
        RemoteCommand::Proof(command) => proof::proof(command, out).await,
        RemoteCommand::Export {
            connection,
            out: path,
            format,
            filters,
            resume,
            verify,
            verifier_key,
            json,
        } => {
            if format == "bundle" {
                if resume {
                    anyhow::bail!(
                        "--resume applies to --format jsonl or csv; download a bundle again"
                    );
                }
                let verifier_key = verifier_key.as_deref().filter(|_| verify);
                let params = search::bundle_params(filters);
                export::export(&connection, &params, &path, verifier_key, json, out).await
            } else {
                if verify {
                    anyhow::bail!("--verify checks a bundle; --format {format} is not one");
                }
                let params = search::export_params(filters, format);
                export::export_events(&connection.client()?, params, &path, resume, json, out).await
            }
        }
        RemoteCommand::Me { connection, json } => keys::me(&connection.client()?, json, out).await,
        RemoteCommand::Keys(command) => keys::keys(command, out).await,
        RemoteCommand::Tenants(command) => tenants::tenants(command, out).await,
        RemoteCommand::ServiceKeys(command) => keys::service_keys(command, out).await,
        RemoteCommand::Catalog(command) => catalog::catalog(command, out).await,
        RemoteCommand::Webhooks(command) => webhooks::webhooks(command, out).await,
        RemoteCommand::Retention(command) => lifecycle::retention(command, out).await,
        RemoteCommand::Erase(args) => lifecycle::erase(args, out).await,
        RemoteCommand::Holds(command) => lifecycle::holds(command, out).await,
    }
}
