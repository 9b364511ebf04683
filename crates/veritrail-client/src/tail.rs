//! The live tail ([`Client::tail`]): the records of `GET /api/v1/events/stream` as they
//! become searchable, read from its Server-Sent Events, reconnecting after a dropped
//! connection with `Last-Event-ID` so that the caller sees every matching record once, in
//! seq order.
//!
//! `SseParser` is the event-stream parser of the WHATWG HTML standard (section 9.2.6,
//! "Interpreting an event stream"), fed with the response's chunks as they come.

use std::collections::VecDeque;

use reqwest::Response;
use reqwest::header::CONTENT_TYPE;
use veritrail_api::{SearchParams, paths};

use crate::client::Client;
use crate::error::ClientError;

/// How long [`Tail`] waits before asking again where to start when the tenant's log has
/// nothing searchable yet and it was asked for every record from seq 0.
const EMPTY_LOG_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// One record of the live tail.
#[derive(Debug, Clone, PartialEq)]
pub struct TailEvent {
    /// The record's position in the tenant's log (the SSE event's `id`).
    pub seq: u64,
    /// The record, as search returns it.
    pub record: serde_json::Value,
}

/// Where a [`Tail`] is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Not known yet: the records appended after the tail started.
    Now,
    /// Not known yet: every record from seq 0.
    Beginning,
    /// Every record after this seq is still to come.
    After(u64),
}

/// A live tail of a tenant's matching records ([`Client::tail`], [`Client::tail_from`]).
///
/// [`Tail::next`] waits for the next record. The stream never ends by itself: when the
/// connection drops or the server closes it (a restart), the tail connects again with
/// `Last-Event-ID`, waiting between attempts as the client's [`crate::RetryPolicy`] says,
/// and carries on after the last record it read; records are never repeated or skipped.
#[derive(Debug)]
pub struct Tail {
    client: Client,
    /// The filters; `cursor`, `order` and `limit` are always `None`.
    params: SearchParams,
    position: Position,
    response: Option<Response>,
    parser: SseParser,
    /// Records read and not handed out yet.
    ready: VecDeque<TailEvent>,
    /// The seq of the last record handed out.
    last_seq: Option<u64>,
    /// Failed or dropped connections since the stream last sent anything (an event or a
    /// heartbeat).
    failures: u32,
}

impl Tail {
    pub(crate) fn new(client: Client, mut params: SearchParams, position: TailStart) -> Self {
        params.cursor = None;
        params.order = None;
        params.limit = None;
        let position = match position {
            TailStart::Now => Position::Now,
            TailStart::After(seq) => Position::After(seq),
            TailStart::From(0) => Position::Beginning,
            TailStart::From(seq) => Position::After(seq - 1),
        };
        Self {
            client,
            params,
            position,
            response: None,
            parser: SseParser::default(),
            ready: VecDeque::new(),
            last_seq: None,
            failures: 0,
        }
    }

    /// The seq of the last record [`Tail::next`] returned; `Client::tail(params,
    /// tail.last_seq())` resumes after it (once one was returned).
    #[must_use]
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The next matching record, waiting as long as it takes.
    ///
    /// Dropped connections are reconnected without an error. An error comes when
    /// connecting fails after the client's retries (the server is down or refuses: a bad
    /// filter, a revoked key), when the stream failed `max_attempts` times in a row
    /// without sending anything, or for a record that does not decode (it is skipped).
    /// The tail stays usable after an error: calling `next` again tries again, after the
    /// retry policy's backoff, from where it was.
    ///
    /// # Errors
    ///
    /// As above; a refusal is a [`ClientError::Api`] (`invalid_parameter` for a bad filter,
    /// `unauthenticated`, `forbidden` for a publisher key).
    pub async fn next(&mut self) -> Result<TailEvent, ClientError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.last_seq = Some(event.seq);
                return Ok(event);
            }
            self.step().await?;
        }
    }

    /// Connects, or reads the next chunk, or finds where to start.
    async fn step(&mut self) -> Result<(), ClientError> {
        let Some(response) = &mut self.response else {
            if self.failures > 0 {
                tokio::time::sleep(self.client.retry_policy().backoff(self.failures - 1)).await;
            }
            let result = match self.position {
                Position::After(after) => self.connect(after).await.map(|response| {
                    self.response = Some(response);
                    self.parser = SseParser::default();
                }),
                Position::Now | Position::Beginning => self.find_start().await,
            };
            if result.is_err() {
                self.failures = self.failures.saturating_add(1);
            }
            return result;
        };
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let mut items = Vec::new();
                self.parser.feed(&chunk, &mut items);
                if !items.is_empty() {
                    self.failures = 0;
                }
                // Every record of the chunk is taken; the first bad one is reported after.
                let mut first_error = None;
                for item in items {
                    if let SseItem::Event(event) = item
                        && let Err(err) = self.accept(&event)
                    {
                        first_error.get_or_insert(err);
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
            Ok(None) => {
                // The server closed the stream (it is shutting down): connect again.
                self.response = None;
                self.failures = self.failures.saturating_add(1);
                Ok(())
            }
            Err(err) => {
                // Cut or stalled: connect again, unless that keeps happening.
                self.response = None;
                self.failures = self.failures.saturating_add(1);
                if self.failures >= self.client.retry_policy().max_attempts {
                    return Err(ClientError::Transport(err));
                }
                Ok(())
            }
        }
    }

    /// Opens the stream after `after`.
    async fn connect(&self, after: u64) -> Result<Response, ClientError> {
        let response = self
            .client
            .open_event_stream(&self.params, Some(after))
            .await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("text/event-stream") {
            return Err(stream_error(format!(
                "the reply is {content_type:?}, not text/event-stream"
            )));
        }
        Ok(response)
    }

    /// Turns a "from now" or "from seq 0" start into an exact position with one search,
    /// since `Last-Event-ID` can only say "after seq N": from now is after the last record
    /// of the log; from seq 0 is after the last record known not to match (the first match
    /// at 0 is handed out from the search). An empty log waits for its first record.
    async fn find_start(&mut self) -> Result<(), ClientError> {
        let probe = SearchParams {
            order: Some("asc".to_owned()),
            limit: Some("1".to_owned()),
            ..self.params.clone()
        };
        let page = self.client.search(&probe).await?;
        if self.position == Position::Now {
            match page.log_size.checked_sub(1) {
                Some(last) => {
                    self.position = Position::After(last);
                    return Ok(());
                }
                // An empty log: now is its beginning.
                None => self.position = Position::Beginning,
            }
        }
        let first = match page.events.first() {
            Some(record) => Some(
                record
                    .get("seq")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| stream_error("a search result without a seq".to_owned()))?,
            ),
            None => None,
        };
        match (first, page.events.into_iter().next()) {
            (Some(0), Some(record)) => {
                self.position = Position::After(0);
                self.ready.push_back(TailEvent { seq: 0, record });
            }
            // Records below the first match do not match.
            (Some(seq), _) => self.position = Position::After(seq - 1),
            // Nothing searchable matches.
            _ => match page.indexed_size.checked_sub(1) {
                Some(last) => self.position = Position::After(last),
                None => tokio::time::sleep(EMPTY_LOG_POLL).await,
            },
        }
        Ok(())
    }

    /// Queues a record of the stream, unless it was seen already. A record whose data
    /// does not decode is skipped (and reported), its seq still counted as read.
    fn accept(&mut self, event: &SseEvent) -> Result<(), ClientError> {
        let record = serde_json::from_str::<serde_json::Value>(&event.data);
        let seq = event.id.trim().parse::<u64>().ok().or_else(|| {
            record
                .as_ref()
                .ok()
                .and_then(|record| record.get("seq")?.as_u64())
        });
        let Some(seq) = seq else {
            return Err(match record {
                Err(source) => decode_error(source),
                Ok(_) => stream_error(format!("an event whose id {:?} is not a seq", event.id)),
            });
        };
        if let Position::After(after) = self.position
            && seq <= after
        {
            return Ok(());
        }
        self.position = Position::After(seq);
        let record = record.map_err(decode_error)?;
        self.ready.push_back(TailEvent { seq, record });
        Ok(())
    }
}

/// Where a [`Tail`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TailStart {
    /// With the records appended after it starts.
    Now,
    /// After this seq (`Last-Event-ID`).
    After(u64),
    /// At this seq.
    From(u64),
}

fn decode_error(source: serde_json::Error) -> ClientError {
    ClientError::Decode {
        what: format!("GET {}", paths::EVENTS_STREAM),
        source,
    }
}

/// A stream that is not what the API promises, as a [`ClientError::Decode`].
fn stream_error(message: String) -> ClientError {
    decode_error(<serde_json::Error as serde::de::Error>::custom(message))
}

/// One dispatched Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The event type (`message` unless the stream said otherwise).
    pub(crate) event: String,
    /// The data lines, joined with `\n`.
    pub(crate) data: String,
    /// The last event ID when the event was dispatched (it carries over to later events
    /// that have no `id` field; empty when none was ever set).
    pub(crate) id: String,
}

/// What the parser read: an event, a comment (like the server's `: heartbeat`), or a
/// reconnection time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseItem {
    Event(SseEvent),
    /// The comment's text after the colon, a leading space included.
    Comment(String),
    /// `retry:` milliseconds.
    Retry(u64),
}

/// An incremental `text/event-stream` parser: feed it chunks split anywhere (inside a line,
/// a UTF-8 character or a CRLF) and it yields what the complete lines make.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The bytes of the current, incomplete line.
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF starting the next one belongs to it.
    after_cr: bool,
    /// The first line was seen (a byte order mark is stripped from it only).
    started: bool,
    data: String,
    event: String,
    last_event_id: String,
}

impl SseParser {
    /// Reads `chunk`, pushing each complete item onto `out`.
    pub(crate) fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseItem>) {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk
            .iter()
            .position(|&byte| byte == b'\n' || byte == b'\r')
        {
            self.line.extend_from_slice(&chunk[..end]);
            let crlf = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if crlf {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
        }
        self.line.extend_from_slice(chunk);
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseItem>) {
        let mut line = line;
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix(b"\xef\xbb\xbf") {
                line = rest;
            }
        }
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(SseItem::Comment(comment.to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.last_event_id),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    out.push(SseItem::Retry(ms));
                }
            }
            _ => {}
        }
    }

    /// An empty line: the event so far, if it has data.
    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out.push(SseItem::Event(SseEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            id: self.last_event_id.clone(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseItem> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        out
    }

    fn event(id: &str, data: &str) -> SseItem {
        SseItem::Event(SseEvent {
            event: "message".into(),
            data: data.into(),
            id: id.into(),
        })
    }

    #[test]
    fn events_are_the_same_however_the_stream_is_split() {
        let stream =
            "id: 7\ndata: {\"seq\":7}\n\n: heartbeat\n\nid: 8\r\ndata: {\"s\":\"é\"}\r\n\r\n";
        let whole = parse_chunks(&[stream.as_bytes()]);
        assert_eq!(
            whole,
            [
                event("7", "{\"seq\":7}"),
                SseItem::Comment(" heartbeat".into()),
                event("8", "{\"s\":\"é\"}"),
            ]
        );
        let bytes = stream.as_bytes();
        // Every split in two, and byte by byte: inside a field name, a UTF-8 character
        // (é is two bytes) and between the CR and the LF of a CRLF.
        for at in 0..=bytes.len() {
            assert_eq!(parse_chunks(&[&bytes[..at], &bytes[at..]]), whole, "{at}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&single), whole);
    }

    #[test]
    fn an_event_is_dispatched_only_at_its_blank_line() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        parser.feed(b"id: 1\ndata: {}\n", &mut out);
        assert!(out.is_empty());
        parser.feed(b"\n", &mut out);
        assert_eq!(out, [event("1", "{}")]);
    }

    #[test]
    fn data_lines_are_joined_with_newlines() {
        let out = parse_chunks(&[b"data: first\ndata:second\ndata\ndata:  indented\n\n"]);
        assert_eq!(out, [event("", "first\nsecond\n\n indented")]);
        // An empty data field still makes an event, with empty data.
        assert_eq!(parse_chunks(&[b"data\n\n"]), [event("", "")]);
    }

    #[test]
    fn the_last_event_id_carries_over_and_can_be_reset() {
        let out =
            parse_chunks(&[b"id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 6\0\ndata: d\n\n"]);
        assert_eq!(
            out,
            [
                event("5", "a"),
                event("5", "b"),
                event("", "c"),
                // An id with a NUL is ignored.
                event("", "d"),
            ]
        );
        // An id alone is remembered for the next event, without dispatching anything.
        let out = parse_chunks(&[b"id: 9\n\ndata: x\n\n"]);
        assert_eq!(out, [event("9", "x")]);
    }

    #[test]
    fn comments_event_types_retry_and_unknown_fields() {
        let out = parse_chunks(&[
            b":\n: heartbeat\nevent: ping\nfoo: bar\nretry: 2500\nretry: soon\ndata: x\n\ndata: y\n\n",
        ]);
        assert_eq!(
            out,
            [
                SseItem::Comment(String::new()),
                SseItem::Comment(" heartbeat".into()),
                SseItem::Retry(2500),
                SseItem::Event(SseEvent {
                    event: "ping".into(),
                    data: "x".into(),
                    id: String::new(),
                }),
                // The type applies to one event only.
                event("", "y"),
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_is_stripped_and_cr_alone_ends_lines() {
        let out = parse_chunks(&[b"\xef\xbb", b"\xbfid: 1\rdata: a\r\r"]);
        assert_eq!(out, [event("1", "a")]);
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        // The connection dropped mid-event: nothing half-read comes out.
        let out = parse_chunks(&[b"id: 1\ndata: {\"seq\":1}\n\nid: 2\ndata: {\"se"]);
        assert_eq!(out, [event("1", "{\"seq\":1}")]);
    }
}
