//! `POST /api/v1/events` (ingest), `GET /api/v1/events` (search), `GET
//! /api/v1/events/count`, `GET /api/v1/events/export` and `GET /api/v1/events/{seq}`.
//! The handlers parse and answer; [`crate::ingest`], [`crate::records`], [`crate::export`]
//! and [`crate::params`] do the work.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use veritrail_api::{
    CountParams, CountResponse, ErrorBody, EventInput, ExportParams, GroupCount, HistogramBucket,
    IngestParams, IngestReply, IngestResponse, RecordResponse, SearchParams, SearchResponse,
    error_codes,
};
use veritrail_search::{GroupBy, Order};

use crate::AppState;
use crate::auth::{Act, Acting, Auth};
use crate::control::Principal;
use crate::error::ApiError;
use crate::export::{self, EventExport, Format};
use crate::extract::{ApiPath, ApiQuery, body_or_error, media_type};
use crate::params::{Cursor, Filters, parse_bool, parse_interval};
use crate::{audit, ingest, records};

/// An ingest admitted within the bodies in flight ([`crate::limits::IngestAdmission`]),
/// before a byte of its body is read; refused at once with 503 `overloaded` otherwise. It
/// comes after [`Auth`], so only a valid key takes a share.
#[derive(Debug)]
pub struct Admitted(
    #[allow(dead_code, reason = "held until the ingest is answered")] crate::limits::IngestPermit,
);

impl axum::extract::FromRequestParts<AppState> for Admitted {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let content_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        state
            .ingest_admission()
            .admit(content_length, state.config().limits.max_body_bytes)
            .map(Admitted)
    }
}

/// Default and largest page sizes of a search.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

/// Ingest one event or an array of events.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    params(IngestParams),
    request_body(
        content = Vec<EventInput>,
        description = "One event object, or an array of at most `limits.max_batch_events` (default 1,000) events; the body at most `limits.max_body_bytes` (default 5 MiB).",
    ),
    responses(
        (status = 200, description = "Every event is durable; one receipt per event, in request order. With a service publisher key each event names its `tenant` and goes to that tenant's log, and the reply has a signed checkpoint per tenant (`logs`); all are stored or none.", body = IngestReply),
        (status = 400, description = "Malformed JSON (`malformed_json`), an empty body or array (`empty_body`), or invalid events (`invalid_events`, each by index). Nothing was stored.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "The key is not a publisher key, or an event names a tenant the key may not write to.", body = ErrorBody),
        (status = 404, description = "An event names a tenant that does not exist (and the service key may not create it). Nothing was stored.", body = ErrorBody),
        (status = 413, description = "Body or event count over the limit (`too_large`). Nothing was stored.", body = ErrorBody),
        (status = 415, description = "A Content-Type that is not JSON (`unsupported_media_type`); without one, the body is read as JSON.", body = ErrorBody),
        (status = 422, description = "Events the tenant's catalog refuses (`rejected_by_catalog`, each by index): under the strict policy a type no catalog defines (`unknown_type`) or a `details` field the entry requires that is missing or of the wrong type; under any policy a type under the reserved `veritrail.` prefix. Nothing was stored.", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After.", body = ErrorBody),
        (status = 503, description = "Overloaded (`overloaded`: the server takes in as much as it can commit in time; nothing was read or stored), storage unavailable or shutting down; retry after Retry-After with the same event ids.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn ingest(
    State(state): State<AppState>,
    auth: Auth,
    admitted: Result<Admitted, ApiError>,
    ApiQuery(params): ApiQuery<IngestParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestReply>, ApiError> {
    // Refused before the body is parsed (it was read, so the connection stays usable).
    let _admitted = admitted?;
    let acting = match &auth.0 {
        Principal::Service(_) => None,
        _ => Some(Acting::of_tenant_key(auth.publisher()?)),
    };
    let options = ingest_options(&params)?;
    check_json_content_type(&headers)?;
    let body = body_or_error(&state, body, "; send fewer events per request")?;
    let events = ingest::parse_events(&body, state.config().limits.max_batch_events)?;
    match acting {
        Some(acting) => ingest::ingest(&state, &acting, events, options)
            .await
            .map(|reply| Json(IngestReply::Tenant(reply))),
        None => ingest::ingest_mixed(&state, &auth, events, options)
            .await
            .map(|reply| Json(IngestReply::Mixed(reply))),
    }
}

/// Ingest one event or an array of events into the named tenant's log.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/events",
    tag = "events",
    params(("tenant" = String, Path, description = "The tenant whose log the events go to."), IngestParams),
    request_body(
        content = Vec<EventInput>,
        description = "As `POST /api/v1/events`; an event may name this tenant in `tenant`, and no other.",
    ),
    responses(
        (status = 200, description = "Every event is durable; one receipt per event, in request order.", body = IngestResponse),
        (status = 400, description = "Malformed JSON (`malformed_json`), an empty body or array (`empty_body`), or invalid events (`invalid_events`, each by index). Nothing was stored.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "Not a service publisher key allowed this tenant (or the tenant's own publisher key), or an event names another tenant.", body = ErrorBody),
        (status = 404, description = "No such tenant, and the key may not create it on first write. Nothing was stored.", body = ErrorBody),
        (status = 413, description = "Body or event count over the limit (`too_large`). Nothing was stored.", body = ErrorBody),
        (status = 415, description = "A Content-Type that is not JSON (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "Events the tenant's catalog refuses (`rejected_by_catalog`, each by index). Nothing was stored.", body = ErrorBody),
        (status = 429, description = "Rate limited: the key's requests, or the tenant's share of a service key's events (the message names the tenant); see Retry-After.", body = ErrorBody),
        (status = 503, description = "Overloaded, storage unavailable or shutting down; retry after Retry-After with the same event ids.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[allow(
    clippy::too_many_arguments,
    reason = "one extractor per part of the request"
)]
pub async fn ingest_for_tenant(
    State(state): State<AppState>,
    auth: Auth,
    admitted: Result<Admitted, ApiError>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(params): ApiQuery<IngestParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let _admitted = admitted?;
    let acting = auth.acting_on_named(&state, &tenant, Act::Publish)?;
    let options = ingest_options(&params)?;
    check_json_content_type(&headers)?;
    let body = body_or_error(&state, body, "; send fewer events per request")?;
    let events = ingest::parse_events(&body, state.config().limits.max_batch_events)?;
    ingest::ingest(&state, &acting, events, options)
        .await
        .map(Json)
}

fn ingest_options(params: &IngestParams) -> Result<ingest::Options, ApiError> {
    Ok(ingest::Options {
        proofs: parse_bool("proof", params.proof.as_deref())?,
        wait_searchable: match params.wait.as_deref() {
            None | Some("durable") => false,
            Some("searchable") => true,
            Some(other) => {
                return Err(ApiError::invalid_parameter(
                    "wait",
                    format!("{other:?} is not `durable` or `searchable`"),
                ));
            }
        },
    })
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = media_type(Some(value.to_str().unwrap_or("")));
    if media_type == "application/json" || media_type.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error_codes::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "events must be sent as JSON with `Content-Type: application/json`, not {media_type:?}"
            ),
        ))
    }
}

/// Search a tenant's events.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of matching records, by seq.", body = SearchResponse),
        (status = 400, description = "An invalid parameter (`invalid_parameter`) or cursor (`invalid_cursor`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Response, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    let filters = Filters::of_search(&params);
    let query = filters.to_query()?;
    let order = match params.order.as_deref() {
        None | Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "order",
                format!("{other:?} is not `asc` or `desc`"),
            ));
        }
    };
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "limit",
                    format!("{text:?} is not a number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let fingerprint = filters.fingerprint(&tenant, order);
    let after = params
        .cursor
        .as_deref()
        .map(|cursor| Cursor::decode(cursor, &fingerprint))
        .transpose()?;
    let page = records::PageRequest {
        query,
        order,
        limit,
        after,
        fingerprint,
    };
    let state_for_work = state.clone();
    let body = state
        .blocking(&tenant.clone(), move || {
            records::search_page(&state_for_work, &tenant, &page)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Count a tenant's events, grouped or as a histogram.
#[utoipa::path(
    get,
    path = "/api/v1/events/count",
    tag = "events",
    params(CountParams),
    responses(
        (status = 200, description = "Counts of matching events.", body = CountResponse),
        (status = 400, description = "An invalid parameter (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 429, description = "Rate limited; see Retry-After.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn count(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<CountParams>,
) -> Result<Json<CountResponse>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    let query = Filters::of_count(&params).to_query()?;
    let group_by = match params.group_by.as_deref() {
        None => None,
        Some("type") => Some(GroupBy::Type),
        Some("category") => Some(GroupBy::Category),
        Some("outcome") => Some(GroupBy::Outcome),
        Some("actor") => Some(GroupBy::Actor),
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "group_by",
                format!("{other:?} is not one of type, category, outcome, actor"),
            ));
        }
    };
    let interval = params.interval.as_deref().map(parse_interval).transpose()?;
    let search = std::sync::Arc::clone(state.search());
    let ledger = std::sync::Arc::clone(state.ledger());
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            let log_size = ledger.size(&tenant)?;
            let indexed_size = search.applied(&tenant);
            let counts = search.count(&tenant, &query, group_by, interval)?;
            Ok(Json(CountResponse {
                total: counts.total,
                groups: group_by.map(|_| {
                    counts
                        .groups
                        .into_iter()
                        .map(|(key, count)| GroupCount { key, count })
                        .collect()
                }),
                histogram: interval.map(|_| {
                    counts
                        .histogram
                        .into_iter()
                        .map(|bucket| HistogramBucket {
                            start: bucket.start.to_rfc3339(),
                            count: bucket.total,
                            failures: bucket.failures,
                        })
                        .collect()
                }),
                indexed_size,
                log_size: log_size.max(indexed_size),
            }))
        })
        .await
}

/// Export a tenant's matching events as JSON Lines, CSV or OCSF.
#[utoipa::path(
    get,
    path = "/api/v1/events/export",
    tag = "events",
    params(ExportParams),
    responses(
        (status = 200, description = "The matching records in seq order, streamed: `application/x-ndjson` (one record JSON per line, as search returns them; with `format=ocsf` one OCSF 1.8 event per line, the record in `unmapped`) or `text/csv` (a header row unless `after_seq` is given, then the columns of docs/exporting.md). Gzip-compressed when `Accept-Encoding` allows it. The export holds exactly the matching records below `Veritrail-Indexed-Size` (a header): what paging through search with the same filters returns below that seq. A transfer that ends early was cut (continue with `after_seq`). The export is itself an audit event (`veritrail.events.exported`).", content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, description = "An invalid filter, format or `after_seq` (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 429, description = "The key (or its tenant) has as many exports and live tails open as it may (`rate_limited`); see Retry-After.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ExportParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = auth.reader()?;
    let tenant = key.tenant.clone();
    let filters = Filters::of_export(&params);
    let query = filters.to_query()?;
    let format = Format::parse(params.format.as_deref())?;
    let after_seq = params
        .after_seq
        .as_deref()
        .map(|text| {
            // A seq is at most i64::MAX (the spec's int64).
            text.parse::<u64>().ok().filter(|&seq| i64::try_from(seq).is_ok()).ok_or_else(|| {
                ApiError::invalid_parameter(
                    "after_seq",
                    format!(
                        "{text:?} is not a seq number; give the seq of the last line you received"
                    ),
                )
            })
        })
        .transpose()?;
    // A place among the key's and tenant's streams, held while the body streams.
    let permit = state.streams().open(&key.key_id, &tenant)?;
    // The bound is read before the export's own audit event is written: it is not in it.
    let indexed_size = state.search().applied(&tenant);
    let log_size = state.ledger().size(&tenant)?.max(indexed_size);
    audit::record(
        &state,
        &tenant,
        audit::events_exported(
            &auth.0,
            &tenant,
            format.as_str(),
            &filters.to_query_string(),
            indexed_size,
            after_seq,
        )?,
    )
    .await?;
    let gzip = export::accepts_gzip(&headers);
    let catalogs = (format == Format::Ocsf)
        .then(|| state.catalogs().effective(state.control(), &tenant))
        .transpose()?;
    let chunks = EventExport {
        tenant: tenant.clone(),
        query,
        format,
        catalogs,
        from: after_seq.map_or(0, |seq| seq.saturating_add(1)),
        below: indexed_size,
    };
    let first = format.preamble(after_seq.is_some());
    let body = export::download(
        state.clone(),
        tenant,
        key.key_hash,
        permit,
        first,
        chunks,
        gzip,
    );
    let mut response = export::response(format.content_type(), format.file_name(), body, gzip);
    let response_headers = response.headers_mut();
    response_headers.insert("veritrail-indexed-size", indexed_size.into());
    response_headers.insert("veritrail-log-size", log_size.into());
    Ok(response)
}

/// One record by its seq.
#[utoipa::path(
    get,
    path = "/api/v1/events/{seq}",
    tag = "events",
    params(
        ("seq" = u64, Path, description = "The record's position in the tenant's log."),
        ("proof" = Option<bool>, Query, description = "Also return the inclusion proof in the latest checkpoint."),
    ),
    responses(
        (status = 200, description = "The record.", body = RecordResponse),
        (status = 400, description = "`seq` is not a number.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "No record at that seq.", body = ErrorBody),
        (status = 410, description = "The record was removed by retention or erasure (`record_removed`, with when and why).", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn record(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(seq): ApiPath<String>,
    ApiQuery(params): ApiQuery<RecordParams>,
) -> Result<Json<RecordResponse>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    let seq: u64 = seq.parse().map_err(|_| {
        ApiError::invalid_parameter(
            "seq",
            format!("{seq:?} is not a seq number; to find an event by its id, search with ?id="),
        )
    })?;
    let with_proof = parse_bool("proof", params.proof.as_deref())?;
    let state_for_work = state.clone();
    state
        .blocking(&tenant.clone(), move || {
            records::record(&state_for_work, &tenant, seq, with_proof)
        })
        .await
        .map(Json)
}

/// Query parameters of `GET /api/v1/events/{seq}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    pub proof: Option<String>,
}
