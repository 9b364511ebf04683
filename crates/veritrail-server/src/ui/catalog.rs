//! The catalog page: the tenant's categories, types, codes, names and descriptions.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{BACK, UNAVAILABLE, page, problem_page};
use super::session::Session;
use crate::AppState;

#[derive(Template)]
#[template(path = "catalog.html")]
pub(super) struct CatalogPage<'a> {
    tenant: &'a str,
    role: &'a str,
    csrf: &'a str,
    catalogs: Vec<CatalogView>,
}

pub(super) struct CatalogView {
    pub(super) id: String,
    pub(super) entries: Vec<EntryView>,
}

pub(super) struct EntryView {
    pub(super) category: String,
    pub(super) event_type: String,
    pub(super) code: Option<u64>,
    pub(super) name: String,
    pub(super) description: String,
}

/// The tenant's catalogs: categories, types, codes, names, descriptions.
pub(super) async fn catalog(State(state): State<AppState>, session: Session) -> Response {
    let catalogs = match state.catalogs().effective(state.control(), &session.tenant) {
        Ok(catalogs) => catalogs,
        Err(mut err) => {
            err.report();
            return problem_page(
                StatusCode::SERVICE_UNAVAILABLE,
                UNAVAILABLE,
                "The catalogs cannot be read right now. Try again in a moment; if this persists, the server's log says why.",
                BACK,
                false,
            );
        }
    };
    let catalogs = catalogs
        .catalogs
        .iter()
        .map(|catalog| {
            let mut entries: Vec<EntryView> = catalog
                .entries()
                .iter()
                .map(|entry| EntryView {
                    category: entry.category.as_str().to_owned(),
                    event_type: entry.event_type.as_str().to_owned(),
                    code: entry.code,
                    name: entry.name.as_str().to_owned(),
                    description: entry
                        .description
                        .as_ref()
                        .map_or_else(String::new, |d| d.as_str().to_owned()),
                })
                .collect();
            entries.sort_by(|a, b| (&a.category, &a.event_type).cmp(&(&b.category, &b.event_type)));
            CatalogView {
                id: catalog.id().to_owned(),
                entries,
            }
        })
        .collect();
    page(
        StatusCode::OK,
        CatalogPage {
            tenant: session.tenant.as_str(),
            role: session.role.as_str(),
            csrf: &session.csrf,
            catalogs,
        }
        .render(),
        &[],
    )
}
