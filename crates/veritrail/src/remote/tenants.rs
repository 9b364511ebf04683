//! `veritrail tenants create|list|get` (server-admin key).

use std::process::ExitCode;

use super::flags::TenantsCommand;
use super::output::{Out, table};

/// `veritrail tenants ...`.
pub(super) async fn tenants(command: TenantsCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    match command {
        TenantsCommand::Create {
            connection,
            id,
            name,
            json,
        } => {
            let created = connection
                .client()?
                .create_tenant(&id, name.as_deref())
                .await?;
            if json {
                out.line(&serde_json::to_string(&created)?)?;
            } else {
                out.line(&format!(
                    "created tenant {}\nowner key {}\nsecret (shown only now): {}",
                    created.tenant.id, created.owner_key.key.id, created.owner_key.secret
                ))?;
            }
        }
        TenantsCommand::List { connection, json } => {
            let list = connection.client()?.list_tenants().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows = vec![["ID", "NAME", "CREATED", "RECORDS"].map(str::to_owned)];
                for tenant in &list.tenants {
                    rows.push([
                        tenant.id.clone(),
                        tenant.name.clone().unwrap_or_else(|| "-".into()),
                        tenant.created_at.clone(),
                        tenant.log_size.to_string(),
                    ]);
                }
                out.line(&table(&rows))?;
            }
        }
        TenantsCommand::Get {
            connection,
            id,
            json,
        } => {
            let tenant = connection.client()?.tenant(&id).await?;
            if json {
                out.line(&serde_json::to_string(&tenant)?)?;
            } else {
                out.line(&format!(
                    "tenant {}  name {}  created {}  records {}",
                    tenant.id,
                    tenant.name.as_deref().unwrap_or("-"),
                    tenant.created_at,
                    tenant.log_size
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
