//! `veritrail catalog import|export|list|settings|shared`: the tenant's event catalog.

use std::process::ExitCode;

use anyhow::Context;

use super::flags::CatalogCommand;
use super::output::{Out, table};

/// `veritrail catalog ...`.
pub(super) async fn catalog(command: CatalogCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Import {
            connection,
            file,
            json,
        } => {
            let document =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let content_type = if file.extension().is_some_and(|ext| ext == "json") {
                "application/json"
            } else {
                "application/yaml"
            };
            let changed = connection
                .client()?
                .put_catalog(document, content_type)
                .await?;
            if json {
                out.line(&serde_json::to_string(&changed)?)?;
            } else {
                out.line(&format!(
                    "imported {}: version {}, {} event types",
                    file.display(),
                    changed.version,
                    changed.entries
                ))?;
            }
        }
        CatalogCommand::Export {
            connection,
            version,
            json,
        } => {
            let client = connection.client()?;
            if json {
                let body = client.catalog(version).await?;
                out.line(&serde_json::to_string_pretty(&body.catalog)?)?;
            } else {
                out.line(client.catalog_yaml(version).await?.trim_end())?;
            }
        }
        CatalogCommand::List { connection, json } => {
            let list = connection.client()?.catalog_categories().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows =
                    vec![["CATEGORY", "TYPE", "CODE", "NAME", "EVENTS"].map(str::to_owned)];
                for category in &list.categories {
                    let name = category.category.clone().unwrap_or_else(|| "(none)".into());
                    rows.push([
                        name,
                        String::new(),
                        String::new(),
                        String::new(),
                        category.count.to_string(),
                    ]);
                    for event_type in &category.types {
                        rows.push([
                            String::new(),
                            event_type.event_type.clone(),
                            event_type.code.map(|c| c.to_string()).unwrap_or_default(),
                            event_type.name.clone().unwrap_or_default(),
                            event_type.count.to_string(),
                        ]);
                    }
                }
                out.line(&table(&rows))?;
            }
        }
        CatalogCommand::Settings {
            connection,
            policy,
            adopt,
            json,
        } => {
            let client = connection.client()?;
            let mut settings = client.catalog_settings().await?;
            if policy.is_some() || adopt.is_some() {
                if let Some(policy) = policy {
                    settings.policy = policy;
                }
                if let Some(adopt) = adopt {
                    settings.adopted = adopt.into_iter().filter(|id| !id.is_empty()).collect();
                }
                settings = client.put_catalog_settings(&settings).await?;
            }
            if json {
                out.line(&serde_json::to_string(&settings)?)?;
            } else {
                out.line(&format!(
                    "policy {}\nadopted {}",
                    settings.policy,
                    if settings.adopted.is_empty() {
                        "(none)".to_owned()
                    } else {
                        settings.adopted.join(", ")
                    }
                ))?;
            }
        }
        CatalogCommand::Shared { connection, json } => {
            let list = connection.client()?.shared_catalogs().await?;
            if json {
                out.line(&serde_json::to_string(&list)?)?;
            } else {
                let mut rows = vec![["ID", "TYPES", "TITLE"].map(str::to_owned)];
                for catalog in &list.catalogs {
                    rows.push([
                        catalog.id.clone(),
                        catalog.entries.to_string(),
                        catalog.title.clone().unwrap_or_default(),
                    ]);
                }
                out.line(&table(&rows))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
