//! Downloads streamed with constant memory: the filtered event export (JSON Lines or CSV)
//! and the verification bundle share one body ([`download`]): each chunk is made when the
//! client has taken the one before (hyper polls the body only then), on a blocking thread
//! of the tenant's share, gzip-compressed there when the client asked for it; a client that
//! reads slowly holds no thread, one that stops is dropped by the connection's write
//! deadline, and revoking the key ends the download at the next chunk.
//!
//! The event export is the search, in seq order, bounded by the index as the export
//! started: it holds exactly the records that paging through search with the same filters
//! returns below that bound (`Veritrail-Indexed-Size`), whatever is ingested meanwhile.

use std::io::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use veritrail_core::event::TenantId;
use veritrail_search::{Order, Query};

use crate::AppState;
use crate::error::ApiError;
use crate::limits::StreamPermit;

/// Records per chunk of an export.
pub const CHUNK_RECORDS: usize = 1000;

/// What a download streams: its chunks, made one at a time (blocking: they read the store).
pub trait Chunks: Send + 'static {
    /// The next chunk; `None` at the end. An error ends the body early (the client sees a
    /// cut transfer, never a short file that looks complete).
    ///
    /// # Errors
    ///
    /// The store's or the index's, already in the API's terms.
    fn next_chunk(&mut self, state: &AppState) -> Result<Option<Vec<u8>>, ApiError>;
}

/// Whether `Accept-Encoding` takes gzip (`gzip` or `*`, with a non-zero `q`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

/// The 200 answer of a download: `body` as `content_type`, saved by a browser as
/// `file_name`, with its encoding and that it varies by it.
pub fn response(content_type: &'static str, file_name: &str, body: Body, gzip: bool) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// A download of `tenant`'s data for the key hashed `key_hash`: `first`, then every chunk
/// of `chunks`; gzip when `gzip`. `permit` (a place among the key's and the tenant's
/// streams) is held until the body is dropped.
pub fn download(
    state: AppState,
    tenant: TenantId,
    key_hash: [u8; 32],
    permit: StreamPermit,
    first: Vec<u8>,
    chunks: impl Chunks,
    gzip: bool,
) -> Body {
    let download = Download {
        state,
        tenant,
        key_hash,
        work: Some(Work {
            chunks,
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
            first: Some(first),
            ended: false,
        }),
        _permit: permit,
    };
    Body::from_stream(futures_util::stream::unfold(
        download,
        |mut download| async move {
            match download.next().await {
                Ok(Some(bytes)) => Some((Ok(bytes), download)),
                Ok(None) => None,
                Err(err) => {
                    // Ends the body: nothing more is polled after an error.
                    download.work = None;
                    Some((Err(err), download))
                }
            }
        },
    ))
}

/// A download in progress.
struct Download<C> {
    state: AppState,
    tenant: TenantId,
    /// The key it was asked with: revoking it ends the download.
    key_hash: [u8; 32],
    /// `None` once finished (or failed).
    work: Option<Work<C>>,
    _permit: StreamPermit,
}

/// What moves to the blocking thread for each chunk.
struct Work<C> {
    chunks: C,
    gzip: Option<GzEncoder<Vec<u8>>>,
    first: Option<Vec<u8>>,
    /// Every chunk (and the gzip trailer) was returned.
    ended: bool,
}

impl<C: Chunks> Work<C> {
    /// The next bytes to send (compressed when asked); `None` at the end.
    fn next(&mut self, state: &AppState) -> Result<Option<Vec<u8>>, ApiError> {
        if self.ended {
            return Ok(None);
        }
        let plain = match self.first.take() {
            Some(first) => Some(first),
            None => self.chunks.next_chunk(state)?,
        };
        self.ended = plain.is_none();
        let Some(encoder) = &mut self.gzip else {
            return Ok(plain);
        };
        let compressed = match plain {
            Some(plain) => {
                encoder.write_all(&plain).map_err(ApiError::internal)?;
                // A sync flush: the client can decompress everything sent so far.
                encoder.flush().map_err(ApiError::internal)?;
                std::mem::take(encoder.get_mut())
            }
            None => {
                let encoder = self.gzip.take().expect("checked above");
                let tail = encoder.finish().map_err(ApiError::internal)?;
                return Ok(Some(tail));
            }
        };
        Ok(Some(compressed))
    }
}

impl<C: Chunks> Download<C> {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, std::io::Error> {
        let Some(mut work) = self.work.take() else {
            return Ok(None);
        };
        if !self.state.control().is_active(&self.key_hash) {
            return Err(std::io::Error::other(
                "the key of this download was revoked",
            ));
        }
        let state = self.state.clone();
        let result = self
            .state
            .blocking(&self.tenant, move || {
                let bytes = work.next(&state)?;
                Ok((work, bytes))
            })
            .await;
        match result {
            Ok((work, Some(bytes))) => {
                // After the gzip trailer `work` has ended: the next call ends the body.
                self.work = Some(work);
                Ok(Some(bytes))
            }
            Ok((_, None)) => Ok(None),
            Err(mut err) => {
                err.report();
                Err(std::io::Error::other(err.message))
            }
        }
    }
}

/// The format of an event export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One record JSON per line.
    Jsonl,
    /// A header row (when the export starts at the beginning), then one row per record.
    Csv,
    /// One OCSF event per line ([`veritrail_core::ocsf`]).
    Ocsf,
}

impl Format {
    /// The `format` parameter.
    ///
    /// # Errors
    ///
    /// `invalid_parameter` naming `format`.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("jsonl") => Ok(Self::Jsonl),
            Some("csv") => Ok(Self::Csv),
            Some("ocsf") => Ok(Self::Ocsf),
            Some(other) => Err(ApiError::invalid_parameter(
                "format",
                format!("{other:?} is not `jsonl`, `csv` or `ocsf`"),
            )),
        }
    }

    /// Its name, as the parameter spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
            Self::Ocsf => "ocsf",
        }
    }

    /// The body's media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl | Self::Ocsf => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file name a browser saves it as.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Jsonl => "veritrail-events.jsonl",
            Self::Csv => "veritrail-events.csv",
            Self::Ocsf => "veritrail-events.ocsf.jsonl",
        }
    }

    /// What comes before the first record: the CSV header row, unless the export continues
    /// an earlier one.
    pub fn preamble(self, continues: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self == Self::Csv && !continues {
            veritrail_core::csv::write_header(&mut out);
        }
        out
    }
}

/// The records of `tenant` that match `query`, in seq order, from `from` up to (not
/// including) `below`: the search index's count of applied records when the export
/// started.
#[derive(Debug)]
pub struct EventExport {
    pub tenant: TenantId,
    pub query: Query,
    pub format: Format,
    /// The tenant's catalogs, for the OCSF class of each type (`format` OCSF only).
    pub catalogs: Option<Arc<veritrail_core::catalog::Catalogs>>,
    /// The next seq it may return.
    pub from: u64,
    /// Records at or above this seq are left out.
    pub below: u64,
}

impl Chunks for EventExport {
    fn next_chunk(&mut self, state: &AppState) -> Result<Option<Vec<u8>>, ApiError> {
        if self.from >= self.below {
            return Ok(None);
        }
        let ledger = state.ledger();
        let mut out = Vec::with_capacity(CHUNK_RECORDS * 700);
        let mut written = 0;
        // A filter-less export reads the ledger in runs (what search would return: every
        // kept record below the bound); a filtered one reads the records search finds.
        if self.query == Query::default() {
            while written == 0 && self.from < self.below {
                let want = usize::try_from(self.below - self.from)
                    .unwrap_or(CHUNK_RECORDS)
                    .min(CHUNK_RECORDS);
                let read = ledger.records(&self.tenant, self.from, want)?;
                if read.end == self.from {
                    // The log ends below the bound: it cannot while the index holds those.
                    return Err(ApiError::internal(format!(
                        "tenant {}: the log ends at seq {} below the index's {}",
                        self.tenant, self.from, self.below
                    )));
                }
                for record in read.records.iter().filter(|r| r.seq() < self.below) {
                    self.write(record, &mut out);
                    written += 1;
                }
                self.from = read.end;
            }
        } else {
            for seq in next_matches(state, &self.tenant, &self.query, &mut self.from, self.below)? {
                if let Some(record) =
                    crate::records::kept_indexed_record(ledger, &self.tenant, seq)?
                {
                    self.write(&record, &mut out);
                    written += 1;
                }
            }
        }
        if written == 0 && self.from >= self.below {
            return Ok(None);
        }
        Ok(Some(out))
    }
}

impl EventExport {
    fn write(&self, record: &veritrail_core::record::Record, out: &mut Vec<u8>) {
        match self.format {
            Format::Jsonl => {
                record.write_json(out);
                out.push(b'\n');
            }
            Format::Csv => record.write_csv_row(out),
            Format::Ocsf => {
                let event_type = record.event().event_type().as_str();
                let mapping = self
                    .catalogs
                    .as_ref()
                    .and_then(|catalogs| catalogs.lookup(event_type))
                    .and_then(|(_, entry)| entry.effective_ocsf())
                    .or_else(|| veritrail_core::catalog::default_ocsf(event_type));
                let event = veritrail_core::ocsf::to_ocsf(
                    record,
                    mapping.as_ref(),
                    env!("CARGO_PKG_VERSION"),
                );
                // Writing a `Value` into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &event);
                out.push(b'\n');
            }
        }
    }
}

/// The seqs of the next page of `query`'s matches in `tenant`'s log from `*from` and below
/// `below`, in seq order; moves `*from` past them (to `below` once none are left).
///
/// # Errors
///
/// The index's.
pub fn next_matches(
    state: &AppState,
    tenant: &TenantId,
    query: &Query,
    from: &mut u64,
    below: u64,
) -> Result<Vec<u64>, ApiError> {
    if *from >= below {
        return Ok(Vec::new());
    }
    let page = state.search().search(
        tenant,
        query,
        Order::Asc,
        CHUNK_RECORDS,
        from.checked_sub(1),
    )?;
    let mut seqs = Vec::with_capacity(page.seqs.len());
    for &seq in &page.seqs {
        if seq >= below {
            *from = below;
            return Ok(seqs);
        }
        seqs.push(seq);
        *from = seq + 1;
    }
    if page.next_after.is_none() || page.seqs.is_empty() {
        *from = below;
    }
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        for yes in ["gzip", "br, gzip;q=0.5", "GZIP", "*", "deflate, gzip ; q=1"] {
            assert!(accepts_gzip(&headers(yes)), "{yes}");
        }
        for no in ["identity", "br", "gzip;q=0", "gzip; q=0.0", "x-gzip2"] {
            assert!(!accepts_gzip(&headers(no)), "{no}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn formats_parse_and_a_bad_one_is_named() {
        assert_eq!(Format::parse(None).expect("default"), Format::Jsonl);
        assert_eq!(Format::parse(Some("csv")).expect("csv"), Format::Csv);
        let err = Format::parse(Some("xlsx")).expect_err("unknown");
        assert!(err.message.contains("format"), "{}", err.message);
        assert!(Format::Csv.preamble(false).starts_with(b"seq,received_at,"));
        assert!(Format::Csv.preamble(true).is_empty());
        assert!(Format::Jsonl.preamble(false).is_empty());
    }
}
