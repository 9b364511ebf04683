//! `GET /api/v1/events/stream`, the live tail of [`crate::tail`] for an API key: the
//! tenant's records that match the search filters. A client that reconnects with
//! `Last-Event-ID: <seq>` gets exactly the matching records after that seq, including
//! those appended while it was away; without it the stream starts with the records
//! appended after the request.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use veritrail_api::{ErrorBody, SearchParams};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::params::Filters;
use crate::tail::{Access, tail};

/// Live tail of a tenant's matching events.
#[utoipa::path(
    get,
    path = "/api/v1/events/stream",
    tag = "events",
    params(
        SearchParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq (the `id` of the last event received)."),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: one event per matching record, its `id:` line the record's seq and its `data:` line the record as a JSON object (the schema here is that of each event's data), the same object search returns in `events`; a `: heartbeat` comment every 15 s.", content_type = "text/event-stream", body = Object, example = json!("id: 41\ndata: {\"seq\":41,\"type\":\"user.login\",\"tenant\":\"acme\"}\n\n")),
        (status = 400, description = "An invalid filter, a `cursor`, `order` or `limit` (a stream has none), or a `Last-Event-ID` that is not a seq (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 429, description = "The key (or its tenant) has as many exports and live tails open as it may (`rate_limited`); see Retry-After.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    for (name, given) in [
        ("cursor", params.cursor.is_some()),
        ("order", params.order.is_some()),
        ("limit", params.limit.is_some()),
    ] {
        if given {
            return Err(ApiError::invalid_parameter(
                name,
                "a stream has no pages: it sends every matching record in seq order (resume with Last-Event-ID)",
            ));
        }
    }
    let query = Filters::of_search(&params).to_query()?;
    let key = auth.reader()?;
    let permit = state.streams().open(&key.key_id, &tenant)?;
    let (control_state, key_hash) = (state.clone(), key.key_hash);
    let access = Access {
        permit,
        allowed: Box::new(move || control_state.control().is_active(&key_hash)),
        ends_at: None,
    };
    let after = match headers.get("last-event-id") {
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            Some(text.trim().parse::<u64>().map_err(|_| {
                ApiError::invalid_parameter(
                    "Last-Event-ID",
                    format!("{text:?} is not a seq (the `id` of an event of this stream)"),
                )
            })?)
        }
        // From now: the records appended after this request.
        None => state.ledger().size(&tenant)?.checked_sub(1),
    };
    Ok(tail(&state, tenant, query, after, access))
}
