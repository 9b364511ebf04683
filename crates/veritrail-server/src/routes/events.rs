//! `POST /api/v1/events` (ingest), `GET /api/v1/events` (search), `GET
//! /api/v1/events/count` and `GET /api/v1/events/{seq}`.
//!
//! Ingest validates the whole request before anything is stored: one invalid event rejects
//! the request, with every invalid field of every event named by index. The reply is sent
//! only after the ledger's commit holding the events is durable.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use veritrail_api::{
    CountParams, CountResponse, ErrorBody, EventErrors, EventInput, FieldErrorBody, GroupCount,
    HistogramBucket, IngestParams, IngestResponse, ReceiptBody, RecordResponse, SearchParams,
    SearchResponse, error_codes,
};
use veritrail_core::event::{Event, Outcome, TenantId, Timestamp};
use veritrail_core::record::CatalogFields;
use veritrail_ledger::AppendError;
use veritrail_search::{GroupBy, Order, Query, TypeFilter};

use super::{ApiPath, ApiQuery, b64};
use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

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
        (status = 200, description = "Every event is durable; one receipt per event, in request order.", body = IngestResponse),
        (status = 400, description = "Malformed JSON (`malformed_json`), an empty body or array (`empty_body`), or invalid events (`invalid_events`, each by index). Nothing was stored.", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "The key is not a publisher key.", body = ErrorBody),
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
) -> Result<Json<IngestResponse>, ApiError> {
    // Refused before the body is parsed (it was read, so the connection stays usable).
    let _admitted = admitted?;
    let key = auth.publisher()?;
    let wait_searchable = match params.wait.as_deref() {
        None | Some("durable") => false,
        Some("searchable") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "wait",
                format!("{other:?} is not `durable` or `searchable`"),
            ));
        }
    };
    let with_proofs = parse_bool("proof", params.proof.as_deref())?;
    check_json_content_type(&headers)?;
    let body = super::body_or_error(&state, body, "; send fewer events per request")?;
    let events = parse_events(&body, state.config().limits.max_batch_events)?;
    let ids: Vec<Option<String>> = events
        .iter()
        .map(|event| event.id().map(|id| id.as_str().to_owned()))
        .collect();
    let tenant = key.tenant.clone();
    let events = apply_catalogs(&state, &tenant, events).await?;
    let receipts = state
        .ledger()
        .append_catalogued(tenant.clone(), events)
        .await
        .map_err(|err| match err {
            AppendError::TooManyEvents { .. } => ApiError::too_large(err.to_string()),
            AppendError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::SHUTTING_DOWN,
                "the server is shutting down; retry with the same event ids",
            ),
            AppendError::Unavailable(_) => ApiError::unavailable(err),
            AppendError::Overloaded { .. } => ApiError::overloaded(format!(
                "{err}; nothing of this request was stored: retry after the Retry-After seconds (with the same event ids, safely)"
            )),
        })?;
    let checkpoint = receipts
        .first()
        .map(|receipt| receipt.checkpoint.to_string())
        .ok_or_else(|| ApiError::internal("an append returned no receipts"))?;
    let tree_size = checkpoint_size(&checkpoint)?;
    let receipt_bodies = |proofs: Option<Vec<Vec<String>>>| -> Vec<ReceiptBody> {
        let mut proofs = proofs.map(Vec::into_iter);
        receipts
            .iter()
            .zip(ids)
            .map(|(receipt, id)| ReceiptBody {
                id,
                seq: receipt.seq,
                leaf_hash: b64(&receipt.leaf_hash),
                duplicate: receipt.duplicate,
                inclusion_proof: proofs.as_mut().and_then(Iterator::next),
            })
            .collect()
    };
    let receipts = if with_proofs {
        // Proofs read stored hashes: off the async threads.
        let ledger = std::sync::Arc::clone(state.ledger());
        let proof_tenant = tenant.clone();
        let seqs: Vec<u64> = receipts.iter().map(|receipt| receipt.seq).collect();
        let note = receipts
            .first()
            .map(|receipt| std::sync::Arc::clone(&receipt.checkpoint))
            .ok_or_else(|| ApiError::internal("an append returned no receipts"))?;
        let proofs = state
            .clone()
            .blocking(&tenant.clone(), move || {
                seqs.iter()
                    .map(|seq| {
                        // Checked against the receipts' signed checkpoint before it is sent.
                        let checked = ledger.checked_inclusion_in(
                            &proof_tenant,
                            *seq,
                            std::sync::Arc::clone(&note),
                        )?;
                        Ok(checked.proof.iter().map(|hash| b64(hash)).collect())
                    })
                    .collect::<Result<Vec<Vec<String>>, ApiError>>()
            })
            .await?;
        receipt_bodies(Some(proofs))
    } else {
        receipt_bodies(None)
    };
    if wait_searchable && let Some(last) = receipts.iter().map(|receipt| receipt.seq).max() {
        wait_until_searchable(&state, &tenant, last + 1).await?;
    }
    Ok(Json(IngestResponse {
        receipts,
        checkpoint,
        tree_size,
    }))
}

/// Applies the tenant's catalogs to every event: the catalog fields, default outcome and
/// rendered summary each record stores; under the strict policy, every refused event by
/// index (422 `rejected_by_catalog`, nothing stored). Types under `veritrail.` are the
/// service's own and refused from clients under any policy.
pub(crate) async fn apply_catalogs(
    state: &AppState,
    tenant: &TenantId,
    events: Vec<Event>,
) -> Result<Vec<(Event, CatalogFields)>, ApiError> {
    let effective = match state.catalogs().cached(tenant) {
        Some(effective) => effective,
        None => {
            let state = state.clone();
            let tenant = tenant.clone();
            state
                .clone()
                .blocking(&tenant.clone(), move || {
                    state.catalogs().effective(state.control(), &tenant)
                })
                .await?
        }
    };
    let n_events = events.len();
    let mut applied = Vec::with_capacity(n_events);
    let mut refused = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        let result = if event.event_type().is_reserved() {
            Err(vec![crate::catalogs::reserved_type("type".to_owned())])
        } else {
            effective.apply(event)
        };
        match result {
            Ok(pair) => applied.push(pair),
            Err(errors) => refused.push(EventErrors {
                index,
                errors: errors
                    .into_iter()
                    .map(crate::catalogs::field_error_body)
                    .collect(),
            }),
        }
    }
    if refused.is_empty() {
        return Ok(applied);
    }
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        error_codes::REJECTED_BY_CATALOG,
        format!(
            "{} of {n_events} events are refused by the tenant's catalog (policy {}; see `events` for each by index); nothing was stored",
            refused.len(),
            effective.policy.as_str()
        ),
    );
    err.events = refused;
    Err(err)
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media_type = super::media_type(Some(value.to_str().unwrap_or("")));
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

/// Parses the body as one event or an array of events and validates every one, reporting
/// every invalid field of every event: what ingest does with a body before the tenant's
/// catalogs (public for the fuzz tests).
///
/// # Errors
///
/// `empty_body`, `malformed_json`, `too_large` (more than `max_events`), or
/// `invalid_events` with the errors of each invalid event by index.
pub fn parse_events(body: &[u8], max_events: usize) -> Result<Vec<Event>, ApiError> {
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    let raws: Vec<&RawValue> = match first {
        None => {
            return Err(ApiError::bad_request(
                error_codes::EMPTY_BODY,
                "the body is empty; send one event object or an array of events",
            ));
        }
        Some(b'[') => serde_json::from_slice(body).map_err(|err| malformed(&err))?,
        Some(b'{') => vec![serde_json::from_slice(body).map_err(|err| malformed(&err))?],
        Some(_) => {
            return Err(ApiError::bad_request(
                error_codes::MALFORMED_JSON,
                "the body must be a JSON object (one event) or a JSON array of events",
            ));
        }
    };
    if raws.is_empty() {
        return Err(ApiError::bad_request(
            error_codes::EMPTY_BODY,
            "the array of events is empty",
        ));
    }
    if raws.len() > max_events {
        return Err(ApiError::too_large(format!(
            "a request may carry at most {max_events} events, this one has {}; split it",
            raws.len()
        )));
    }
    let mut events = Vec::with_capacity(raws.len());
    let mut invalid = Vec::new();
    for (index, raw) in raws.into_iter().enumerate() {
        let parsed = input_of(raw.get())
            .map_err(|error| vec![error])
            .and_then(|input| {
                Event::parse(input).map_err(|invalid| {
                    invalid
                        .errors
                        .into_iter()
                        .map(|error| FieldErrorBody {
                            field: error.field,
                            code: error.code.to_owned(),
                            message: error.message,
                        })
                        .collect()
                })
            });
        match parsed {
            Ok(event) => events.push(event),
            Err(errors) => invalid.push(EventErrors { index, errors }),
        }
    }
    if !invalid.is_empty() {
        let n_invalid = invalid.len();
        let mut err = ApiError::bad_request(
            error_codes::INVALID_EVENTS,
            format!(
                "{n_invalid} of {} events are invalid (see `events` for each by index); nothing was stored",
                events.len() + n_invalid
            ),
        );
        err.events = invalid;
        return Err(err);
    }
    Ok(events)
}

/// Deserialises one event, naming the field at fault: an unknown field (`unknown_field`),
/// a value of the wrong JSON type (`invalid_type`), or anything else (`malformed_json`).
fn input_of(raw: &str) -> Result<EventInput, FieldErrorBody> {
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    // An event is an object, not an array of its fields.
    serde_path_to_error::deserialize(&mut deserializer)
        .map(|veritrail_core::event::ObjectOnly(input)| input)
        .map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            // serde's message ends with the position in this event's JSON: not useful here.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            let code = if message.starts_with("unknown field") {
                "unknown_field"
            } else if message.starts_with("invalid type") {
                veritrail_core::event::codes::INVALID_TYPE
            } else {
                error_codes::MALFORMED_JSON
            };
            FieldErrorBody {
                field: if path == "." { String::new() } else { path },
                code: code.to_owned(),
                message,
            }
        })
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        error_codes::MALFORMED_JSON,
        format!("the body is not valid JSON: {err}"),
    )
}

fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(other) => Err(ApiError::invalid_parameter(
            name,
            format!("{other:?} is not true or false"),
        )),
    }
}

/// The tree size of a signed checkpoint the ledger made. Its signature is not checked
/// again: the note comes from the ledger, which signed it (verifying costs ~50 µs, which
/// at tens of thousands of ingests per second is a core).
pub fn checkpoint_size(note: &str) -> Result<u64, ApiError> {
    let text = note
        .split_once("\n\n")
        .map(|(text, _signatures)| format!("{text}\n"))
        .ok_or_else(|| ApiError::internal("a checkpoint note without signatures"))?;
    let checkpoint =
        veritrail_core::checkpoint::Checkpoint::parse(&text).map_err(ApiError::internal)?;
    Ok(checkpoint.size())
}

async fn wait_until_searchable(
    state: &AppState,
    tenant: &TenantId,
    size: u64,
) -> Result<(), ApiError> {
    let mut progress = state.indexer().progress();
    state.indexer().nudge();
    loop {
        if state.search().applied(tenant) >= size {
            return Ok(());
        }
        // The request timeout bounds the wait.
        if tokio::time::timeout(Duration::from_secs(5), progress.changed())
            .await
            .is_err()
        {
            state.indexer().nudge();
        }
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
    let search = std::sync::Arc::clone(state.search());
    let ledger = std::sync::Arc::clone(state.ledger());
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            // Read the log size first: everything the index holds is then within it.
            let log_size = ledger.size(&tenant)?;
            let indexed_size = search.applied(&tenant);
            let page = search
                .search(&tenant, &query, order, limit, after)
                .map_err(search_error)?;
            // The body of a `SearchResponse`, written straight from the records: a page is up
            // to 1,000 of them, and a `Value` tree per record cost more than the search.
            let mut body = Vec::with_capacity(page.seqs.len() * 768 + 256);
            body.extend_from_slice(b"{\"events\":[");
            for (idx, seq) in page.seqs.iter().enumerate() {
                if idx > 0 {
                    body.push(b',');
                }
                write_indexed_record(&ledger, &tenant, *seq, &mut body)?;
            }
            body.push(b']');
            if let Some(after) = page.next_after {
                let cursor = Cursor {
                    after,
                    fingerprint: fingerprint.clone(),
                }
                .encode();
                body.extend_from_slice(b",\"next_cursor\":");
                serde_json::to_writer(&mut body, &cursor)
                    .map_err(|err| ApiError::internal(err.to_string()))?;
            }
            let log_size = log_size.max(indexed_size);
            body.extend_from_slice(
                format!(",\"indexed_size\":{indexed_size},\"log_size\":{log_size}}}").as_bytes(),
            );
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        })
        .await
}

/// Appends the JSON of the record at `seq`, which the search index returned, to `out`.
pub(crate) fn write_indexed_record(
    ledger: &veritrail_ledger::Ledger,
    tenant: &TenantId,
    seq: u64,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let record = ledger
        .records(tenant, seq, 1)?
        .pop()
        .ok_or_else(|| ApiError::internal(format!("seq {seq} is indexed but not in the log")))?;
    record.write_json(out);
    Ok(())
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
            let counts = search
                .count(&tenant, &query, group_by, interval)
                .map_err(search_error)?;
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

/// Parses `15m`, `1h`, `30s`, `1d` into nanoseconds: the count's `interval` (public for the
/// fuzz tests).
///
/// # Errors
///
/// `invalid_parameter` naming `interval`.
pub fn parse_interval(text: &str) -> Result<i64, ApiError> {
    let invalid = || {
        ApiError::invalid_parameter(
            "interval",
            format!("{text:?} is not a number and a unit s, m, h or d (like 15m)"),
        )
    };
    // The unit is the last character, whatever its width (a multi-byte one is no unit).
    let unit_at = text.char_indices().last().ok_or_else(invalid)?.0;
    let (number, unit) = text.split_at(unit_at);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    if number <= 0 || number > 366 * 86_400 / seconds {
        return Err(ApiError::invalid_parameter(
            "interval",
            format!("{text:?} must be between 1s and 366d"),
        ));
    }
    Ok(number * seconds * 1_000_000_000)
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
        .clone()
        .blocking(&tenant.clone(), move || {
            let ledger = state_for_work.ledger();
            // The bytes are checked against their leaf hash, and a proof against the signed
            // root: damaged data is refused, never served.
            let (bytes, leaf_hash) = ledger.checked_record(&tenant, seq)?.ok_or_else(|| {
                ApiError::not_found(format!("the log has no record at seq {seq}"))
            })?;
            let record = veritrail_core::record::Record::decode(&bytes).map_err(|err| {
                ApiError::integrity(format!("record {seq} does not decode: {err}"))
            })?;
            let proof = if with_proof {
                Some(super::log::inclusion_body(
                    &state_for_work,
                    &tenant,
                    seq,
                    None,
                )?)
            } else {
                None
            };
            Ok(Json(RecordResponse {
                record: record.to_json(),
                leaf_hash: b64(&leaf_hash),
                proof,
            }))
        })
        .await
}

/// Query parameters of `GET /api/v1/events/{seq}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    pub proof: Option<String>,
}

/// The filter parameters shared by search, count and the live tail, as given (public for
/// the fuzz tests).
#[derive(Debug, Serialize)]
pub struct Filters<'a> {
    event_type: Option<&'a str>,
    category: Option<&'a str>,
    code: Option<&'a str>,
    name: Option<&'a str>,
    actor: Option<&'a str>,
    target: Option<&'a str>,
    outcome: Option<&'a str>,
    correlation_id: Option<&'a str>,
    id: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    q: Option<&'a str>,
}

impl<'a> Filters<'a> {
    /// The filters of a search (or of the live tail, which takes the same parameters).
    pub fn of_search(params: &'a SearchParams) -> Self {
        Self {
            event_type: params.event_type.as_deref(),
            category: params.category.as_deref(),
            code: params.code.as_deref(),
            name: params.name.as_deref(),
            actor: params.actor.as_deref(),
            target: params.target.as_deref(),
            outcome: params.outcome.as_deref(),
            correlation_id: params.correlation_id.as_deref(),
            id: params.id.as_deref(),
            from: params.from.as_deref(),
            to: params.to.as_deref(),
            q: params.q.as_deref(),
        }
    }

    /// The filters of a count.
    pub fn of_count(params: &'a CountParams) -> Self {
        Self {
            event_type: params.event_type.as_deref(),
            category: params.category.as_deref(),
            code: params.code.as_deref(),
            name: params.name.as_deref(),
            actor: params.actor.as_deref(),
            target: params.target.as_deref(),
            outcome: params.outcome.as_deref(),
            correlation_id: params.correlation_id.as_deref(),
            id: params.id.as_deref(),
            from: params.from.as_deref(),
            to: params.to.as_deref(),
            q: params.q.as_deref(),
        }
    }

    /// The search index's query.
    ///
    /// # Errors
    ///
    /// `invalid_parameter` naming the first invalid filter: `type`, `code`, `outcome`,
    /// `from`, `to`.
    pub fn to_query(&self) -> Result<Query, ApiError> {
        let text = |value: Option<&str>| {
            value
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let types = match self.event_type {
            None => Vec::new(),
            Some(types) => types
                .split(',')
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(|text| {
                    TypeFilter::parse(text).map_err(|err| ApiError::invalid_parameter("type", err))
                })
                .collect::<Result<_, _>>()?,
        };
        let code = self
            .code
            .map(|code| {
                // Digits only, as the spec's pattern says (`parse` would take a `+`).
                Some(code)
                    .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|code| code.parse::<u64>().ok())
                    .ok_or_else(|| {
                        ApiError::invalid_parameter("code", format!("{code:?} is not a number"))
                    })
            })
            .transpose()?;
        let outcome = self
            .outcome
            .map(|outcome| {
                Outcome::parse(outcome).map_err(|err| ApiError::invalid_parameter("outcome", err))
            })
            .transpose()?;
        let time = |name: &str, value: Option<&str>| {
            value
                .map(|value| {
                    Timestamp::parse_rfc3339(value)
                        .map_err(|err| ApiError::invalid_parameter(name, err))
                })
                .transpose()
        };
        Ok(Query {
            types,
            category: text(self.category),
            code,
            name: text(self.name),
            actor: text(self.actor),
            target: text(self.target),
            outcome,
            correlation_id: text(self.correlation_id),
            event_id: text(self.id),
            from: time("from", self.from)?,
            to: time("to", self.to)?,
            text: text(self.q),
        })
    }

    /// Names the query and order, so a cursor cannot be used with another.
    pub fn fingerprint(&self, tenant: &TenantId, order: Order) -> String {
        let mut hasher = Sha256::new();
        hasher.update(tenant.as_str().as_bytes());
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(self).unwrap_or_default());
        hasher.update(match order {
            Order::Asc => b"asc".as_slice(),
            Order::Desc => b"desc".as_slice(),
        });
        URL_SAFE_NO_PAD.encode(&hasher.finalize()[..9])
    }
}

/// The opaque paging cursor: the last seq returned, bound to its query and order (public
/// for the fuzz tests).
#[derive(Debug)]
pub struct Cursor {
    /// The last seq of the page.
    pub after: u64,
    /// [`Filters::fingerprint`] of the page's query and order.
    pub fingerprint: String,
}

impl Cursor {
    /// The cursor's text: base64url of `v1.<after>.<fingerprint>`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1.{}.{}", self.after, self.fingerprint))
    }

    /// The `after` of a cursor's text, if it was issued for `fingerprint`.
    ///
    /// # Errors
    ///
    /// `invalid_cursor`: not a cursor this server issued, or one of another query or order.
    pub fn decode(text: &str, fingerprint: &str) -> Result<u64, ApiError> {
        let invalid = |why: &str| {
            ApiError::bad_request(
                error_codes::INVALID_CURSOR,
                format!(
                    "the cursor {why}; pass next_cursor from the previous page unchanged, with the same filters and order, or start again without a cursor"
                ),
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("is not one this server issued"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| invalid("is not one this server issued"))?;
        let mut parts = text.splitn(3, '.');
        let (Some("v1"), Some(after), Some(bound_to)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("is not one this server issued"));
        };
        // Only the spelling `encode` writes (no sign, no leading zeros).
        let after = after
            .parse::<u64>()
            .ok()
            .filter(|seq| seq.to_string() == after)
            .ok_or_else(|| invalid("is not one this server issued"))?;
        if bound_to != fingerprint {
            return Err(invalid("belongs to a different query or order"));
        }
        Ok(after)
    }
}

pub(crate) fn search_error(err: veritrail_search::SearchError) -> ApiError {
    match err {
        veritrail_search::SearchError::InvalidQuery(message) => {
            ApiError::bad_request(error_codes::INVALID_PARAMETER, message)
        }
        veritrail_search::SearchError::TooCostly(message) => {
            ApiError::bad_request(error_codes::QUERY_TOO_COSTLY, message)
        }
        other => ApiError::unavailable(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_bad_ones_are_named() {
        assert_eq!(parse_interval("15m").expect("valid"), 900 * 1_000_000_000);
        assert_eq!(parse_interval("1d").expect("valid"), 86_400 * 1_000_000_000);
        for bad in ["", "m", "0h", "-1h", "1w", "1.5h", "9999999d"] {
            let err = parse_interval(bad).expect_err(bad);
            assert_eq!(err.code, error_codes::INVALID_PARAMETER, "{bad}");
        }
    }

    #[test]
    fn an_interval_ending_in_a_multibyte_character_is_refused() {
        // Found by fuzz_count_query: these panicked (a split inside a character), and the
        // count answered 500.
        for bad in ["1é", "é", "1\u{300}", "15\u{1F600}"] {
            let err = parse_interval(bad).expect_err(bad);
            assert_eq!(err.code, error_codes::INVALID_PARAMETER, "{bad}");
        }
    }

    #[test]
    fn only_the_cursor_spelling_the_server_issues_is_accepted() {
        // Found by fuzz_search_query: `after` with a sign or leading zeros was accepted, so
        // one page had several cursors.
        let fingerprint = "fp";
        let issued = Cursor {
            after: 5,
            fingerprint: fingerprint.to_owned(),
        }
        .encode();
        assert_eq!(Cursor::decode(&issued, fingerprint).expect("issued"), 5);
        for after in ["+5", "05", "005", " 5", "5 "] {
            let text = URL_SAFE_NO_PAD.encode(format!("v1.{after}.{fingerprint}"));
            let err = Cursor::decode(&text, fingerprint).expect_err(after);
            assert_eq!(err.code, error_codes::INVALID_CURSOR, "{after}");
        }
        let zero = Cursor {
            after: 0,
            fingerprint: fingerprint.to_owned(),
        }
        .encode();
        assert_eq!(Cursor::decode(&zero, fingerprint).expect("zero"), 0);
    }

    #[test]
    fn a_cursor_works_only_with_its_own_query() {
        let params = SearchParams {
            category: Some("auth".into()),
            ..SearchParams::default()
        };
        let filters = Filters::of_search(&params);
        let tenant = TenantId::parse("acme").expect("tenant");
        let fingerprint = filters.fingerprint(&tenant, Order::Desc);
        let cursor = Cursor {
            after: 42,
            fingerprint: fingerprint.clone(),
        }
        .encode();
        assert_eq!(Cursor::decode(&cursor, &fingerprint).expect("valid"), 42);
        assert!(Cursor::decode(&cursor, &filters.fingerprint(&tenant, Order::Asc)).is_err());
        let other_tenant = TenantId::parse("globex").expect("tenant");
        assert!(Cursor::decode(&cursor, &filters.fingerprint(&other_tenant, Order::Desc)).is_err());
        let other = SearchParams::default();
        assert!(
            Cursor::decode(
                &cursor,
                &Filters::of_search(&other).fingerprint(&tenant, Order::Desc)
            )
            .is_err()
        );
        for bad in ["", "!!", "djE", &URL_SAFE_NO_PAD.encode("v1.x.y")] {
            let err = Cursor::decode(bad, &fingerprint).expect_err(bad);
            assert_eq!(err.code, error_codes::INVALID_CURSOR);
        }
    }
}
