//! A record as one row of CSV (RFC 4180): the stable column set of the event export, for
//! spreadsheets and the tools that read them.
//!
//! Every column is one field of the record's JSON view ([`Record::to_json`]): the actor and
//! source flattened into a column per field; the first target in `target_type`,
//! `target_id`, `target_name`, and every target as the JSON array `targets`; `details` as
//! its canonical JSON text. An absent field is an empty cell. Rows end in CRLF.
//!
//! A cell that starts with `=`, `+`, `-`, `@`, a tab, a carriage return or `'` gets a
//! leading `'`, so that a spreadsheet shows the value instead of running it as a formula
//! (CSV injection): the original value is the cell without that first `'`. No other cell
//! starts with `'`.

use crate::event::{IpAddress, Outcome, Timestamp};
use crate::json_out::ObjectWriter;
use crate::record::Record;

/// The columns, in order; the header row of an export.
pub const COLUMNS: [&str; 30] = [
    "seq",
    "received_at",
    "occurred_at",
    "id",
    "type",
    "code",
    "name",
    "category",
    "severity",
    "outcome",
    "summary",
    "actor_id",
    "actor_type",
    "actor_name",
    "actor_email",
    "actor_ip",
    "actor_user_agent",
    "target_type",
    "target_id",
    "target_name",
    "targets",
    "correlation_id",
    "source_service",
    "source_component",
    "source_version",
    "source_ip",
    "details",
    "description",
    "published_by",
    "tenant",
];

/// Appends the header row ([`COLUMNS`]).
pub fn write_header(out: &mut Vec<u8>) {
    let mut row = Row::new(out);
    for column in COLUMNS {
        row.cell(Some(column));
    }
    row.end();
}

impl Record {
    /// Appends the record as one CSV row of [`COLUMNS`].
    pub fn write_csv_row(&self, out: &mut Vec<u8>) {
        let event = self.event();
        let catalog = self.catalog();
        let actor = event.actor();
        let source = event.source();
        let first_target = event.targets().first();
        let targets = (!event.targets().is_empty()).then(|| {
            let mut json = Vec::with_capacity(128);
            json.push(b'[');
            for (idx, target) in event.targets().iter().enumerate() {
                if idx > 0 {
                    json.push(b',');
                }
                let mut object = ObjectWriter::open(&mut json);
                object.str("id", text(target.id()));
                object.str("name", text(target.name()));
                object.str("type", text(target.target_type()));
                object.finish();
            }
            json.push(b']');
            // Written from `&str`s by the JSON writer: valid UTF-8.
            String::from_utf8(json).unwrap_or_default()
        });
        let mut row = Row::new(out);
        row.cell(Some(&self.seq().to_string()));
        row.cell(Some(&self.received_at().to_rfc3339()));
        row.cell(event.occurred_at().map(Timestamp::to_rfc3339).as_deref());
        row.cell(text(event.id()));
        row.cell(Some(event.event_type().as_str()));
        row.cell(catalog.code.map(|code| code.to_string()).as_deref());
        row.cell(text(catalog.name.as_ref()));
        row.cell(text(catalog.category.as_ref()));
        row.cell(text(catalog.severity.as_ref()));
        row.cell(event.outcome().map(Outcome::as_str));
        row.cell(text(event.summary()));
        row.cell(actor.and_then(|actor| text(actor.id())));
        row.cell(actor.and_then(|actor| text(actor.actor_type())));
        row.cell(actor.and_then(|actor| text(actor.name())));
        row.cell(actor.and_then(|actor| text(actor.email())));
        row.cell(actor.and_then(|actor| actor.ip().map(IpAddress::as_str)));
        row.cell(actor.and_then(|actor| text(actor.user_agent())));
        row.cell(first_target.and_then(|target| text(target.target_type())));
        row.cell(first_target.and_then(|target| text(target.id())));
        row.cell(first_target.and_then(|target| text(target.name())));
        row.cell(targets.as_deref());
        row.cell(text(event.correlation_id()));
        row.cell(source.and_then(|source| text(source.service())));
        row.cell(source.and_then(|source| text(source.component())));
        row.cell(source.and_then(|source| text(source.version())));
        row.cell(source.and_then(|source| source.ip().map(IpAddress::as_str)));
        row.cell(event.details().map(|details| details.as_str()));
        row.cell(text(catalog.description.as_ref()));
        row.cell(text(catalog.published_by.as_ref()));
        row.cell(Some(self.tenant().as_str()));
        row.end();
    }
}

fn text<T: AsRef<str>>(value: Option<&T>) -> Option<&str> {
    value.map(AsRef::as_ref)
}

/// A row being written: cells separated by commas, quoted when they must be.
struct Row<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Row<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, first: true }
    }

    fn cell(&mut self, value: Option<&str>) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        let Some(value) = value else { return };
        let guard = matches!(
            value.as_bytes().first(),
            Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'')
        );
        let quote = value
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
        if quote {
            self.out.push(b'"');
        }
        if guard {
            self.out.push(b'\'');
        }
        if quote {
            for (idx, part) in value.split('"').enumerate() {
                if idx > 0 {
                    self.out.extend_from_slice(b"\"\"");
                }
                self.out.extend_from_slice(part.as_bytes());
            }
            self.out.push(b'"');
        } else {
            self.out.extend_from_slice(value.as_bytes());
        }
    }

    fn end(self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[Option<&str>]) -> String {
        let mut out = Vec::new();
        let mut row = Row::new(&mut out);
        for cell in cells {
            row.cell(*cell);
        }
        row.end();
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn cells_are_quoted_only_when_they_must_be() {
        assert_eq!(row(&[Some("a"), None, Some("b c")]), "a,,b c\r\n");
        assert_eq!(
            row(&[Some("x,y"), Some("say \"hi\""), Some("two\nlines")]),
            "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_leading_quote() {
        assert_eq!(
            row(&[
                Some("=1+1"),
                Some("+1"),
                Some("-2"),
                Some("@SUM(A1)"),
                Some("'kept")
            ]),
            "'=1+1,'+1,'-2,'@SUM(A1),''kept\r\n"
        );
        // Quoted and guarded: the quote comes inside the quotes.
        assert_eq!(row(&[Some("=A1,B1")]), "\"'=A1,B1\"\r\n");
        assert_eq!(row(&[Some("a=b")]), "a=b\r\n");
    }

    #[test]
    fn the_header_names_every_column_once() {
        let mut out = Vec::new();
        write_header(&mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let names: Vec<&str> = text.trim_end().split(',').collect();
        assert_eq!(names, COLUMNS);
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), COLUMNS.len());
    }
}
