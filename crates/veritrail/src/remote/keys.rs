//! `veritrail me` (who the key is) and `veritrail keys list|create|revoke`.

use std::process::ExitCode;

use veritrail_api::KeyBody;
use veritrail_client::{Client, KeyScope};

use super::flags::KeysCommand;
use super::output::{Out, table};

/// `veritrail me`: the key's id, and its role and tenant or that it is the server admin's.
pub(super) async fn me(client: &Client, json: bool, out: &mut Out) -> anyhow::Result<ExitCode> {
    let me = client.me().await?;
    if json {
        out.line(&serde_json::to_string(&me)?)?;
    } else if let (Some(tenant), Some(role)) = (&me.tenant, me.role) {
        out.line(&format!("key {} ({role}) of tenant {tenant}", me.key_id))?;
    } else {
        out.line(&format!("key {} (server admin)", me.key_id))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `veritrail keys ...`: in the key's own tenant, or with `--tenant` another.
pub(super) async fn keys(command: KeysCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
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
