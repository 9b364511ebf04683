//! The embedded view (`/embed`): the Activity table of a viewer token's tenant, inside
//! another site's frame, with the token's fixed filters over the URL's; each use is audited.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use veritrail_core::event::TenantId;
use veritrail_search::Order;

use super::activity::{ActivityParams, View, activity_view};
use super::page::{UNREADABLE, damaged, framed_page, problem_page};
use super::record::{Shown, record_view};
use crate::AppState;
use crate::error::ApiError;

#[derive(Template)]
#[template(path = "embed_record.html")]
pub(super) struct EmbedRecordPage<'a> {
    tenant: &'a str,
    /// The embedded view of the same token.
    back: &'a str,
    r: Shown,
}

#[derive(Template)]
#[template(path = "embed.html")]
pub(super) struct EmbedPage<'a> {
    tenant: &'a str,
    claims: &'a crate::viewer::Claims,
    filters: &'a ActivityParams,
    problem: Option<String>,
    view: View,
}

/// The embedded view's refusal page (it has no way elsewhere: it is inside another site).
pub(super) fn embed_refused(status: StatusCode, reason: &str) -> Response {
    problem_page(status, "This view cannot be shown", reason, None, true)
}

/// Opens the viewer token of an embedded view's request (the `token` of its filters): the
/// filters, with the token's fixed ones put over the URL's (a token cannot be widened), the
/// token's claims and tenant, with this use recorded in the tenant's log; or the page that
/// says why not.
pub(super) async fn use_token(
    state: &AppState,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Result<(ActivityParams, crate::viewer::Claims, TenantId), Response> {
    let Ok(axum::extract::Query(mut filters)) = params else {
        return Err(embed_refused(
            StatusCode::BAD_REQUEST,
            "The address of this view is not valid.",
        ));
    };
    let now = crate::clock::now().unix_nanos().div_euclid(1_000_000_000);
    let claims = match crate::viewer::open(state.control().viewer_token_key(), &filters.token, now)
    {
        Ok(claims) => claims,
        Err(crate::viewer::TokenError::Expired) => {
            return Err(embed_refused(
                StatusCode::UNAUTHORIZED,
                "This view's token has expired; the page that shows it must get a new one.",
            ));
        }
        Err(crate::viewer::TokenError::Invalid) => {
            return Err(embed_refused(
                StatusCode::UNAUTHORIZED,
                "This view's token is not valid.",
            ));
        }
    };
    let Ok(tenant) = TenantId::parse(&claims.tenant) else {
        return Err(embed_refused(
            StatusCode::UNAUTHORIZED,
            "This view's token is not valid.",
        ));
    };
    if state
        .control()
        .live_viewer_token(&claims.tenant, &claims.id, now)
        .is_none()
    {
        return Err(embed_refused(
            StatusCode::UNAUTHORIZED,
            "This view's token was revoked (or the key that made it was); the page that shows it must get a new one.",
        ));
    }
    if let Err(err) = state.embed_limiter().check(&claims.id) {
        let mut refusal = embed_refused(
            StatusCode::TOO_MANY_REQUESTS,
            "This view was asked for too often in the last minute; wait a moment and reload.",
        );
        if let Some(seconds) = err.retry_after {
            refusal
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        return Err(refusal);
    }
    if let Some(actor) = &claims.actor {
        filters.actor.clone_from(actor);
    }
    if let Some(target) = &claims.target {
        filters.target.clone_from(target);
    }
    // Uses are recorded by token and minute: the first of each minute writes the event.
    let minute = now.div_euclid(60);
    if state.embed_uses().first_in_minute(&claims.id, minute) {
        let used = crate::audit::viewer_token_used(&claims.id, minute);
        let recorded = match used {
            Ok(event) => crate::audit::record(state, &tenant, event).await,
            Err(err) => Err(err),
        };
        if let Err(mut err) = recorded {
            err.report();
            state.embed_uses().forget(&claims.id, minute);
            return Err(embed_refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The log cannot be written right now, and the uses of this view are recorded in it. Try again in a moment.",
            ));
        }
    }
    Ok((filters, claims, tenant))
}

/// One record of the embedded view, as the record page shows it (the drawer opens it),
/// when it is inside the token's scope: the search index must find it under the token's
/// filters, the same test that put it in the view's table. Outside the scope, or missing,
/// it is the same 404, so a token tells nothing of the records it does not show.
pub(super) async fn embed_record(
    State(state): State<AppState>,
    axum::extract::Path(seq): axum::extract::Path<String>,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (filters, claims, tenant) = match use_token(&state, params).await {
        Ok(opened) => opened,
        Err(refusal) => return refusal,
    };
    let back = ActivityParams {
        token: filters.token.clone(),
        ..ActivityParams::default()
    }
    .url("", "", None);
    let missing = || {
        problem_page(
            StatusCode::NOT_FOUND,
            "No such event",
            "This view has no event with that number.",
            Some((&back, "Back to the events")),
            true,
        )
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return missing();
    };
    let scope = ActivityParams {
        actor: claims.actor.clone().unwrap_or_default(),
        target: claims.target.clone().unwrap_or_default(),
        ..ActivityParams::default()
    };
    let Ok(query) = crate::params::Filters::of_search(&scope.search()).to_query() else {
        return missing();
    };
    let (work, work_tenant) = (state.clone(), tenant.clone());
    let found = state
        .blocking(&tenant, move || -> Result<Option<Shown>, ApiError> {
            // The newest record at or below `seq` in the scope is `seq` itself, or it is not
            // in the scope.
            let hit =
                work.search()
                    .search(&work_tenant, &query, Order::Desc, 1, seq.checked_add(1))?;
            if hit.seqs.first() != Some(&seq) {
                return Ok(None);
            }
            record_view(&work, &work_tenant, seq)
        })
        .await;
    let shown = match found {
        Ok(Some(shown)) => shown,
        Ok(None) => return missing(),
        Err(mut err) if err.code == veritrail_api::error_codes::INTEGRITY_ERROR => {
            err.report();
            return damaged(true);
        }
        Err(mut err) => {
            err.report();
            return embed_refused(StatusCode::SERVICE_UNAVAILABLE, UNREADABLE);
        }
    };
    framed_page(
        StatusCode::OK,
        EmbedRecordPage {
            tenant: tenant.as_str(),
            back: &back,
            r: shown,
        }
        .render(),
        &[],
        true,
    )
}

/// The embeddable view: the Activity table and histogram of a viewer token's tenant, with
/// the token's fixed filters over whatever the URL asks; each use is an audit event.
pub(super) async fn embed(
    State(state): State<AppState>,
    params: Result<axum::extract::Query<ActivityParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (filters, claims, tenant) = match use_token(&state, params).await {
        Ok(opened) => opened,
        Err(refusal) => return refusal,
    };
    let (view, problem) = match crate::params::Filters::of_search(&filters.search()).to_query() {
        Ok(query) => {
            let (work, work_tenant, work_filters) =
                (state.clone(), tenant.clone(), filters.clone());
            match state
                .blocking(&tenant, move || {
                    activity_view(&work, &work_tenant, &query, &work_filters)
                })
                .await
            {
                Ok(view) => (view, None),
                Err(err) if err.status == StatusCode::BAD_REQUEST => {
                    (View::default(), Some(err.message))
                }
                Err(mut err) => {
                    err.report();
                    return embed_refused(StatusCode::SERVICE_UNAVAILABLE, UNREADABLE);
                }
            }
        }
        Err(err) => (View::default(), Some(err.message)),
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    framed_page(
        status,
        EmbedPage {
            tenant: tenant.as_str(),
            claims: &claims,
            filters: &filters,
            problem,
            view,
        }
        .render(),
        &[],
        true,
    )
}
