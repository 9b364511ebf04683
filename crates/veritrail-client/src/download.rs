//! Filtered event exports (`GET /api/v1/events/export`) downloaded so they can be resumed:
//! gzip on the wire, decoded here; only whole rows reach the output (a cut transfer leaves
//! no half line); the seq of the last row written is known, so the next request continues
//! after it ([`ExportParams::after_seq`]).

use std::io::Write;

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use veritrail_api::{ExportParams, paths};

use crate::client::{Client, RetryMode};
use crate::error::ClientError;

/// How far a download got; the caller keeps it across attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records written (a CSV header row is not one).
    pub events: u64,
    /// Bytes written (decoded).
    pub bytes: u64,
    /// The seq of the last record written: continue after it.
    pub last_seq: Option<u64>,
    /// The export's bound (`Veritrail-Indexed-Size` of the latest request): it holds the
    /// matching records below this seq.
    pub indexed_size: u64,
}

/// The format of a download, as far as finding its rows goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// JSON Lines: a row ends at each newline.
    Jsonl,
    /// CSV: a row ends at a newline outside a quoted cell; its first cell is the seq.
    Csv,
    /// OCSF events, one a line: the seq is `metadata.sequence`.
    Ocsf,
}

impl RowFormat {
    /// The format of `params.format` (`jsonl` when absent).
    #[must_use]
    pub fn of(params: &ExportParams) -> Self {
        match params.format.as_deref() {
            Some("csv") => Self::Csv,
            Some("ocsf") => Self::Ocsf,
            _ => Self::Jsonl,
        }
    }
}

/// Splits a byte stream into whole rows, remembering the seq of the last one.
#[derive(Debug)]
pub struct Rows {
    format: RowFormat,
    pending: Vec<u8>,
    /// How much of `pending` was scanned, and whether that stops inside a quoted cell.
    scanned: usize,
    in_quotes: bool,
}

impl Rows {
    #[must_use]
    pub fn new(format: RowFormat) -> Self {
        Self {
            format,
            pending: Vec::new(),
            scanned: 0,
            in_quotes: false,
        }
    }

    /// Takes `data`; writes every row it completes to `out`, counting them in `progress`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Write`] when `out` fails; [`ClientError::Download`] for a row without a
    /// seq.
    pub fn feed(
        &mut self,
        data: &[u8],
        out: &mut impl Write,
        progress: &mut Progress,
    ) -> Result<(), ClientError> {
        self.pending.extend_from_slice(data);
        let mut row_start = 0;
        let mut idx = self.scanned;
        while idx < self.pending.len() {
            match self.pending[idx] {
                b'"' if self.format == RowFormat::Csv => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => {
                    if let Some(seq) = row_seq(self.format, &self.pending[row_start..idx])? {
                        progress.events += 1;
                        progress.last_seq = Some(seq);
                    }
                    row_start = idx + 1;
                }
                _ => {}
            }
            idx += 1;
        }
        out.write_all(&self.pending[..row_start])
            .map_err(ClientError::Write)?;
        progress.bytes += row_start as u64;
        self.pending.drain(..row_start);
        self.scanned = self.pending.len();
        Ok(())
    }

    /// Whether a partial row is held back (the transfer ended inside it).
    #[must_use]
    pub fn has_partial_row(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// The seq of a row; `None` for the CSV header row.
fn row_seq(format: RowFormat, row: &[u8]) -> Result<Option<u64>, ClientError> {
    let bad = || ClientError::Download(format!("an export row has no seq: {}", preview(row)));
    match format {
        RowFormat::Jsonl => {
            #[derive(serde::Deserialize)]
            struct Seq {
                seq: u64,
            }
            let seq: Seq = serde_json::from_slice(row).map_err(|_| bad())?;
            Ok(Some(seq.seq))
        }
        RowFormat::Ocsf => {
            #[derive(serde::Deserialize)]
            struct Metadata {
                sequence: u64,
            }
            #[derive(serde::Deserialize)]
            struct Event {
                metadata: Metadata,
            }
            let event: Event = serde_json::from_slice(row).map_err(|_| bad())?;
            Ok(Some(event.metadata.sequence))
        }
        RowFormat::Csv => {
            let cell = row.split(|&b| b == b',').next().unwrap_or_default();
            if cell == b"seq" {
                return Ok(None);
            }
            std::str::from_utf8(cell)
                .ok()
                .and_then(|text| text.parse().ok())
                .map(Some)
                .ok_or_else(bad)
        }
    }
}

fn preview(row: &[u8]) -> String {
    String::from_utf8_lossy(&row[..row.len().min(80)]).into_owned()
}

/// A `Write` that gzip-decodes into [`Rows`], or passes bytes straight to them.
enum Decoder<'a, W: Write> {
    Plain(RowWriter<'a, W>),
    Gzip(Box<flate2::write::GzDecoder<RowWriter<'a, W>>>),
}

/// [`Rows`] with their output, as one `Write`.
struct RowWriter<'a, W: Write> {
    rows: Rows,
    out: &'a mut W,
    progress: &'a mut Progress,
    /// The first error of `feed` (a `Write` can only carry `io::Error`).
    failed: Option<ClientError>,
}

impl<W: Write> Write for RowWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Err(err) = self.rows.feed(data, self.out, self.progress) {
            self.failed = Some(err);
            return Err(std::io::Error::other(
                "the export's rows could not be written",
            ));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Client {
    /// Downloads the events matching `params` (`GET /api/v1/events/export`) into `out`,
    /// whole rows only, counting them in `progress` and calling `observe` after each piece
    /// received. After an error `progress.last_seq` says where to continue: set
    /// `params.after_seq` to it and call again (the same `out`, appended to).
    ///
    /// # Errors
    ///
    /// As the request ends; a cut transfer is [`ClientError::Transport`], or
    /// [`ClientError::Download`] when it ends inside a row or its gzip stream;
    /// [`ClientError::Write`] when `out` fails.
    pub async fn export_events<W: Write>(
        &self,
        params: &ExportParams,
        out: &mut W,
        progress: &mut Progress,
        mut observe: impl FnMut(&Progress),
    ) -> Result<(), ClientError> {
        let url = self.url(paths::EVENTS_EXPORT);
        // No overall timeout: a large export takes as long as it takes; the read timeout
        // still catches a stalled connection.
        let mut response = self
            .execute(RetryMode::Idempotent, || {
                self.http
                    .get(&url)
                    .query(params)
                    .header(ACCEPT_ENCODING, "gzip")
            })
            .await?;
        if let Some(size) = response
            .headers()
            .get("veritrail-indexed-size")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
        {
            progress.indexed_size = size;
        }
        let gzip = response
            .headers()
            .get(CONTENT_ENCODING)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let rows = RowWriter {
            rows: Rows::new(RowFormat::of(params)),
            out,
            progress,
            failed: None,
        };
        let mut decoder = if gzip {
            Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(rows)))
        } else {
            Decoder::Plain(rows)
        };
        let result = async {
            while let Some(chunk) = response.chunk().await.map_err(ClientError::Transport)? {
                let written = match &mut decoder {
                    Decoder::Plain(rows) => rows.write_all(&chunk),
                    Decoder::Gzip(gz) => gz.write_all(&chunk),
                };
                let rows = match &mut decoder {
                    Decoder::Plain(rows) => rows,
                    Decoder::Gzip(gz) => gz.get_mut(),
                };
                if let Err(err) = written {
                    return Err(rows.failed.take().unwrap_or_else(|| {
                        ClientError::Download(format!("the export's gzip does not decode: {err}"))
                    }));
                }
                observe(rows.progress);
            }
            let rows = match decoder {
                Decoder::Plain(rows) => rows,
                Decoder::Gzip(gz) => gz.finish().map_err(|err| {
                    ClientError::Download(format!("the export's gzip ended early: {err}"))
                })?,
            };
            if rows.rows.has_partial_row() {
                return Err(ClientError::Download(
                    "the export ended inside a row".to_owned(),
                ));
            }
            rows.out.flush().map_err(ClientError::Write)?;
            Ok(())
        };
        result.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(format: RowFormat, pieces: &[&[u8]]) -> (Vec<u8>, Progress, bool) {
        let mut rows = Rows::new(format);
        let mut out = Vec::new();
        let mut progress = Progress::default();
        for piece in pieces {
            rows.feed(piece, &mut out, &mut progress).expect("feed");
        }
        (out, progress, rows.has_partial_row())
    }

    #[test]
    fn only_whole_json_lines_are_written() {
        let (out, progress, partial) = feed_all(
            RowFormat::Jsonl,
            &[b"{\"seq\":4,\"a\":\"x\"}\n{\"se", b"q\":9}\n{\"seq\":1"],
        );
        assert_eq!(out, b"{\"seq\":4,\"a\":\"x\"}\n{\"seq\":9}\n");
        assert_eq!(progress.events, 2);
        assert_eq!(progress.last_seq, Some(9));
        assert_eq!(progress.bytes, out.len() as u64);
        assert!(partial);
    }

    #[test]
    fn a_csv_row_ends_only_outside_quotes() {
        let (out, progress, partial) = feed_all(
            RowFormat::Csv,
            &[
                b"seq,summary\r\n3,\"two\r\nli",
                b"nes, \"\"quoted\"\"\"\r\n7,plain\r\n8,\"cut",
            ],
        );
        assert_eq!(
            out,
            b"seq,summary\r\n3,\"two\r\nlines, \"\"quoted\"\"\"\r\n7,plain\r\n"
        );
        assert_eq!(progress.events, 2);
        assert_eq!(progress.last_seq, Some(7));
        assert!(partial);
    }

    #[test]
    fn a_row_without_a_seq_is_an_error() {
        let mut rows = Rows::new(RowFormat::Csv);
        let err = rows
            .feed(b"x,y\r\n", &mut Vec::new(), &mut Progress::default())
            .expect_err("no seq");
        assert!(matches!(err, ClientError::Download(_)), "{err:?}");
    }
}
