//! The verifiable log of the caller's tenant: the latest signed checkpoint, the verifier
//! key, inclusion and consistency proofs, and the export bundle that `veritrail verify
//! --export` checks offline.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use veritrail_api::{
    BundleParams, ConsistencyProofBody, ErrorBody, ExportHeader, ExportLine, InclusionProofBody,
    IntegrityBody, LogKeyBody,
};
use veritrail_core::event::{EventId, TenantId};
use veritrail_core::merkle::{Frontier, NodeId};

use crate::AppState;
use crate::audit;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::export;
use crate::extract::ApiQuery;
use crate::params::Filters;
use crate::proofs::{self, b64};

/// The latest signed checkpoint of the caller's log.
#[utoipa::path(
    get,
    path = "/api/v1/log/checkpoint",
    tag = "log",
    responses(
        (status = 200, description = "A C2SP tlog-checkpoint signed as a C2SP signed note (Ed25519).", body = String, content_type = "text/plain"),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "The log is empty: no checkpoint yet.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn checkpoint(State(state): State<AppState>, auth: Auth) -> Result<Response, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    let note = proofs::latest_checkpoint(&state, &tenant)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// The key that verifies this log's checkpoints.
#[utoipa::path(
    get,
    path = "/api/v1/log/key",
    tag = "log",
    responses(
        (status = 200, description = "The verifier key to pin, and the caller's log origin.", body = LogKeyBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn key(State(state): State<AppState>, auth: Auth) -> Result<Json<LogKeyBody>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    Ok(Json(LogKeyBody {
        verifier_key: state.ledger().verifier().to_vkey_string(),
        origin: state.ledger().origin(&tenant),
    }))
}

/// How the server's scrubber last found the caller's stored log.
#[utoipa::path(
    get,
    path = "/api/v1/log/integrity",
    tag = "log",
    responses(
        (status = 200, description = "The last complete scrub of the log (journal checksums, leaf hashes, stored nodes and offsets, signed checkpoints) and what it found.", body = IntegrityBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn integrity(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<IntegrityBody>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    Ok(Json(crate::scrub::integrity(&state, &tenant).await?))
}

/// Query of `GET /api/v1/log/proof/inclusion`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    /// The record's seq (or give `id`).
    pub seq: Option<u64>,
    /// The event's id (or give `seq`).
    pub id: Option<String>,
    /// The tree to prove inclusion in; default the latest checkpoint's.
    pub tree_size: Option<u64>,
}

/// Inclusion proof of a record in a tree.
#[utoipa::path(
    get,
    path = "/api/v1/log/proof/inclusion",
    tag = "log",
    params(InclusionParams),
    responses(
        (status = 200, description = "The proof, the leaf hash and the latest signed checkpoint.", body = InclusionProofBody),
        (status = 400, description = "Neither or both of seq and id, or a tree size out of range (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "No such record.", body = ErrorBody),
        (status = 410, description = "The record was removed by retention or erasure (`record_removed`, with when and why); its leaf stays in the tree.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn inclusion(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<InclusionParams>,
) -> Result<Json<InclusionProofBody>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            let seq = match (params.seq, params.id) {
                (Some(seq), None) => seq,
                (None, Some(id)) => {
                    let event_id = EventId::parse(&id)
                        .map_err(|err| ApiError::invalid_parameter("id", err))?;
                    state
                        .ledger()
                        .store()
                        .find_event_ids(&tenant, &[&event_id])?
                        .pop()
                        .flatten()
                        .ok_or_else(|| ApiError::not_found(format!("no event with id {id:?}")))?
                }
                _ => {
                    return Err(ApiError::invalid_parameter(
                        "seq",
                        "give exactly one of seq and id",
                    ));
                }
            };
            proofs::inclusion_body(&state, &tenant, seq, params.tree_size).map(Json)
        })
        .await
}

/// Query of `GET /api/v1/log/proof/consistency`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The older tree size (at least 1).
    pub from: u64,
    /// The newer tree size; default the latest checkpoint's.
    pub to: Option<u64>,
}

/// Consistency proof: the tree of `from` records is a prefix of the tree of `to`.
#[utoipa::path(
    get,
    path = "/api/v1/log/proof/consistency",
    tag = "log",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The proof and the latest signed checkpoint.", body = ConsistencyProofBody),
        (status = 400, description = "Sizes out of range (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "The log is empty.", body = ErrorBody),
        (status = 410, description = "`from` ends inside the removed records at the start of the log (`tree_size_removed`): proofs start at the first kept record's tree size.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn consistency(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ConsistencyParams>,
) -> Result<Json<ConsistencyProofBody>, ApiError> {
    let tenant = auth.reader()?.tenant.clone();
    state
        .clone()
        .blocking(&tenant.clone(), move || {
            proofs::consistency_body(&state, &tenant, params.from, params.to).map(Json)
        })
        .await
}

/// The log as a self-verifying bundle: all of it, or the records matching filters.
#[utoipa::path(
    get,
    path = "/api/v1/log/export",
    tag = "log",
    params(BundleParams),
    responses(
        (status = 200, description = "`application/x-ndjson`: an ExportHeader line, then one ExportLine per record from seq 0 to tree_size - 1 (the removed records at the start of the log as one prefix line with their subtree hashes), each kept record with its bytes and its JSON. With filters, only the matching kept records that search had indexed, each with its inclusion proof in the checkpoint's tree (`filters` in the header). Gzip-compressed when `Accept-Encoding` allows it. Check it offline with `veritrail verify --export FILE --key KEY`. The export is itself an audit event (`veritrail.log.exported`).", body = ExportHeader, content_type = "application/x-ndjson"),
        (status = 400, description = "An invalid filter (`invalid_parameter`).", body = ErrorBody),
        (status = 401, description = "No key, or an unknown or revoked one.", body = ErrorBody),
        (status = 403, description = "A publisher or server-admin key.", body = ErrorBody),
        (status = 404, description = "The log is empty.", body = ErrorBody),
        (status = 429, description = "The key (or its tenant) has as many exports and live tails open as it may (`rate_limited`); see Retry-After.", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<BundleParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = auth.reader()?;
    let tenant = key.tenant.clone();
    let filters = Filters::of_bundle(&params);
    let query = filters.to_query()?;
    let filters = filters.to_query_string();
    // A place among the key's and tenant's streams, held while the body streams.
    let permit = state.streams().open(&key.key_id, &tenant)?;
    let key_hash = key.key_hash;
    let indexed_size = state.search().applied(&tenant);
    let (checkpoint, tree_size) = proofs::latest_checkpoint_sized(&state, &tenant)?;
    audit::record(
        &state,
        &tenant,
        audit::log_exported(&auth.0, &tenant, tree_size, &filters)?,
    )
    .await?;
    let filtered = !filters.is_empty();
    let header_line = ExportHeader {
        format: ExportHeader::FORMAT.to_owned(),
        tenant: tenant.to_string(),
        origin: state.ledger().origin(&tenant),
        verifier_key: state.ledger().verifier().to_vkey_string(),
        tree_size,
        checkpoint,
        filters: filtered.then_some(filters),
    };
    let mut first = serde_json::to_vec(&header_line).map_err(ApiError::internal)?;
    first.push(b'\n');
    let gzip = export::accepts_gzip(&headers);
    let body = if filtered {
        let matches = Matches {
            tenant: tenant.clone(),
            query,
            from: 0,
            below: indexed_size.min(tree_size),
            tree_size,
        };
        export::download(state, tenant, key_hash, permit, first, matches, gzip)
    } else {
        let bundle = Bundle {
            tenant: tenant.clone(),
            next: 0,
            tree_size,
        };
        export::download(state, tenant, key_hash, permit, first, bundle, gzip)
    };
    Ok(export::response(
        "application/x-ndjson",
        "veritrail-export.ndjson",
        body,
        gzip,
    ))
}

/// The lines of a filtered bundle: the matching kept records below `below`, each with its
/// inclusion proof in the tree of `tree_size`.
struct Matches {
    tenant: TenantId,
    query: veritrail_search::Query,
    from: u64,
    below: u64,
    tree_size: u64,
}

impl export::Chunks for Matches {
    fn next_chunk(&mut self, state: &AppState) -> Result<Option<Vec<u8>>, ApiError> {
        if self.from >= self.below {
            return Ok(None);
        }
        let ledger = state.ledger();
        let seqs =
            export::next_matches(state, &self.tenant, &self.query, &mut self.from, self.below)?;
        let mut out = Vec::with_capacity(seqs.len() * 2048);
        for seq in seqs {
            // Checked against its stored leaf hash; removed since it was indexed: left out.
            let (bytes, leaf_hash) = match ledger.checked_record(&self.tenant, seq) {
                Ok(Some(found)) => found,
                Ok(None) => {
                    return Err(ApiError::internal(format!(
                        "seq {seq} is indexed but not in the log"
                    )));
                }
                Err(veritrail_ledger::ReadError::Removed { .. }) => continue,
                Err(err) => return Err(err.into()),
            };
            let proof = ledger
                .inclusion_proof(&self.tenant, seq, self.tree_size)
                .map_err(ApiError::from)?;
            let line = ExportLine {
                seq,
                leaf_hash: b64(&leaf_hash),
                record: Some(b64(&bytes)),
                json: Some(record_json(seq, &bytes)?),
                proof: proof.iter().map(|hash| b64(hash)).collect(),
                removed_by: None,
                removed_below: None,
                subtree_hashes: Vec::new(),
            };
            serde_json::to_writer(&mut out, &line).map_err(ApiError::internal)?;
            out.push(b'\n');
        }
        Ok(Some(out))
    }
}

/// The JSON of the record whose stored bytes are `bytes`.
fn record_json(seq: u64, bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    veritrail_core::record::Record::decode(bytes)
        .map(|record| record.to_json())
        .map_err(|err| ApiError::integrity(format!("record {seq} does not decode: {err}")))
}

/// The lines of a bundle after its header.
struct Bundle {
    tenant: TenantId,
    next: u64,
    tree_size: u64,
}

impl export::Chunks for Bundle {
    fn next_chunk(&mut self, state: &AppState) -> Result<Option<Vec<u8>>, ApiError> {
        if self.next >= self.tree_size {
            return Ok(None);
        }
        let want = usize::try_from(self.tree_size - self.next)
            .unwrap_or(export::CHUNK_RECORDS)
            .min(export::CHUNK_RECORDS);
        let (n, bytes) = export_chunk(
            state.ledger(),
            &self.tenant,
            self.next,
            want,
            self.tree_size,
        )?;
        if n == 0 {
            return Err(ApiError::internal(
                "the log ended before the export's tree size",
            ));
        }
        self.next += n as u64;
        Ok(Some(bytes))
    }
}

/// Lines for records `from..from + want` of an export of `tree_size` records, and how
/// many records they stand for; an error ends the stream early, which the verifier
/// reports as a short export. The removed records at the start of the log are one line:
/// the hashes of their complete subtrees, all a proof needs of them (their leaf hashes may
/// be gone).
fn export_chunk(
    ledger: &veritrail_ledger::Ledger,
    tenant: &TenantId,
    from: u64,
    want: usize,
    tree_size: u64,
) -> Result<(usize, Vec<u8>), ApiError> {
    let removed = ledger.removed(tenant);
    let prefix = removed.next_kept(0).min(tree_size);
    if from == 0 && prefix > 0 {
        let hashes = ledger
            .store()
            .read_nodes(tenant, &Frontier::node_ids(prefix))?;
        let line = ExportLine {
            seq: 0,
            leaf_hash: String::new(),
            record: None,
            json: None,
            proof: Vec::new(),
            removed_by: removed.by(prefix - 1),
            removed_below: Some(prefix),
            subtree_hashes: hashes.iter().map(|hash| b64(hash)).collect(),
        };
        let mut out = serde_json::to_vec(&line).map_err(ApiError::internal)?;
        out.push(b'\n');
        let n = usize::try_from(prefix).map_err(ApiError::internal)?;
        return Ok((n, out));
    }
    // Removed records' bodies are not read (compaction may have taken them out): only
    // runs of kept ones.
    let size = ledger.size(tenant)?;
    let want = usize::try_from(size.saturating_sub(from))
        .unwrap_or(usize::MAX)
        .min(want);
    let mut records: Vec<Option<Vec<u8>>> = Vec::with_capacity(want);
    let end = from + want as u64;
    let mut seq = from;
    while seq < end {
        let kept = removed.next_kept(seq).min(end);
        records.extend((seq..kept).map(|_| None));
        seq = kept;
        if seq == end {
            break;
        }
        let run_end = removed.next_removed(seq).min(end);
        let run = usize::try_from(run_end - seq).expect("at most want");
        let read = ledger.store().read_records(tenant, seq, run)?;
        if read.len() < run {
            return Err(ApiError::internal("the log ended early"));
        }
        records.extend(read.into_iter().map(Some));
        seq = run_end;
    }
    let ids: Vec<NodeId> = (0..records.len() as u64)
        .map(|i| NodeId::new(0, from + i))
        .collect();
    let hashes = ledger.store().read_nodes(tenant, &ids)?;
    let mut out = Vec::with_capacity(records.len() * 600);
    for (seq, (record, hash)) in (from..).zip(records.iter().zip(&hashes)) {
        // A removed record is exported as its leaf hash alone: the tree still folds to the
        // checkpoint's root, and its body is not handed out (asked again: it may have been
        // removed since its body was read).
        let removed_by = ledger.removed_by(tenant, seq);
        if let Some(record) = record
            && veritrail_core::merkle::leaf_hash(record) != *hash
        {
            // Never served: the export ends here, and the verifier reports it short.
            return Err(ApiError::integrity(format!(
                "tenant {tenant}: the record at seq {seq} does not hash to its stored leaf hash"
            )));
        }
        let kept = record.as_deref().filter(|_| removed_by.is_none());
        let line = ExportLine {
            seq,
            leaf_hash: b64(hash),
            record: kept.map(b64),
            json: kept.map(|bytes| record_json(seq, bytes)).transpose()?,
            proof: Vec::new(),
            removed_by,
            removed_below: None,
            subtree_hashes: Vec::new(),
        };
        serde_json::to_writer(&mut out, &line).map_err(ApiError::internal)?;
        out.push(b'\n');
    }
    Ok((records.len(), out))
}
