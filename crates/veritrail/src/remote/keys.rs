//! `veritrail me` (who the key is), `veritrail keys list|create|revoke` and `veritrail
//! service-keys create|list|revoke`.

use std::process::ExitCode;

use veritrail_api::{CreateServiceKey, KeyBody, ServiceKeyBody};
use veritrail_client::{Client, KeyScope};

use super::flags::{KeysCommand, ServiceKeysCommand};
use super::output::{Out, table};

/// `veritrail me`: the key's id, and its role and tenant or that it is the server admin's.
pub(super) async fn me(client: &Client, json: bool, out: &mut Out) -> anyhow::Result<ExitCode> {
    let me = client.me().await?;
    if json {
        out.line(&serde_json::to_string(&me)?)?;
    } else if let (Some(tenant), Some(role)) = (&me.tenant, me.role) {
        out.line(&format!("key {} ({role}) of tenant {tenant}", me.key_id))?;
    } else if let Some(service) = &me.service {
        out.line(&format!(
            "service key {} ({}) for {}",
            me.key_id,
            service.role,
            scope_text(service)
        ))?;
    } else {
        out.line(&format!("key {} (server admin)", me.key_id))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `veritrail keys ...`: in the key's own tenant, or with `--tenant` another.
pub(super) async fn keys(command: KeysCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    let scope = |client: &Client| {
        client
            .acting_tenant()
            .map_or(KeyScope::Own, |tenant| KeyScope::Tenant(tenant.to_owned()))
    };
    match command {
        KeysCommand::List { connection, json } => {
            let client = connection.client()?;
            let list = client.list_keys(&scope(&client)).await?;
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
            json,
        } => {
            let client = connection.client()?;
            let created = client
                .create_key(&scope(&client), role, name.as_deref())
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
            json,
        } => {
            let client = connection.client()?;
            let key = client.revoke_key(&scope(&client), &key_id).await?;
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

/// `veritrail service-keys ...` (server-admin key).
pub(super) async fn service_keys(
    command: ServiceKeysCommand,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    match command {
        ServiceKeysCommand::Create {
            connection,
            role,
            name,
            tenants,
            tenant_prefix,
            create_tenants,
            json,
        } => {
            let created = connection
                .client()?
                .create_service_key(&CreateServiceKey {
                    role,
                    name,
                    tenants: (!tenants.is_empty()).then_some(tenants),
                    tenant_prefix,
                    create_tenants,
                })
                .await?;
            if json {
                out.line(&serde_json::to_string(&created)?)?;
            } else {
                out.line(&format!(
                    "created service key {} ({}) for {}\nsecret (shown only now): {}",
                    created.key.id,
                    created.key.role,
                    scope_text(&created.key),
                    created.secret
                ))?;
            }
        }
        ServiceKeysCommand::List { connection, json } => {
            let list = connection.client()?.service_keys().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows = vec![
                    ["ID", "ROLE", "TENANTS", "NAME", "CREATED", "REVOKED"].map(str::to_owned),
                ];
                for key in &list.keys {
                    rows.push([
                        key.id.clone(),
                        key.role.to_string(),
                        scope_text(key),
                        key.name.clone().unwrap_or_else(|| "-".into()),
                        key.created_at.clone(),
                        key.revoked_at.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                out.line(&table(&rows))?;
            }
        }
        ServiceKeysCommand::Revoke {
            connection,
            key_id,
            json,
        } => {
            let key = connection.client()?.revoke_service_key(&key_id).await?;
            if json {
                out.line(&serde_json::to_string(&key)?)?;
            } else {
                out.line(&format!(
                    "revoked service key {} at {}",
                    key.id,
                    key.revoked_at.as_deref().unwrap_or("-")
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The tenants a service key may act on, in words.
fn scope_text(key: &ServiceKeyBody) -> String {
    let scope = match (&key.tenants, &key.tenant_prefix) {
        (Some(tenants), _) => format!("tenants {}", tenants.join(",")),
        (None, Some(prefix)) => format!("tenants {prefix}*"),
        (None, None) => "every tenant".to_owned(),
    };
    if key.create_tenants {
        format!("{scope} (creates them on first write)")
    } else {
        scope
    }
}
