//! Writes JSON objects straight into a byte buffer: the record's JSON view without building
//! a `serde_json::Value` tree first (a search page writes 50 of them per request).
//!
//! Callers give keys in ascending byte order, which is the order `serde_json::Map` (a
//! `BTreeMap`) serialises in, so the output is the same bytes either way.

/// An object being written; `finish` closes it.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    pub(crate) fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// `"key":"value"` when there is a value.
    pub(crate) fn str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.key(key);
            write_str(self.out, value);
        }
    }

    /// `"key":value` when there is a value.
    pub(crate) fn u64(&mut self, key: &str, value: Option<u64>) {
        if let Some(value) = value {
            self.key(key);
            let mut digits = itoa_buffer();
            self.out.extend_from_slice(format_u64(value, &mut digits));
        }
    }

    /// `"key":` then JSON text the caller vouches for (canonical `details`).
    pub(crate) fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
    }

    /// `"key":{...}` written by `fill`.
    pub(crate) fn object(&mut self, key: &str, fill: impl FnOnce(&mut ObjectWriter<'_>)) {
        self.key(key);
        let mut inner = ObjectWriter::open(self.out);
        fill(&mut inner);
        inner.finish();
    }

    /// `"key":[{...},...]`, one object per item, written by `fill`.
    pub(crate) fn array<T>(
        &mut self,
        key: &str,
        items: &[T],
        mut fill: impl FnMut(&mut ObjectWriter<'_>, &T),
    ) {
        self.key(key);
        self.out.push(b'[');
        for (idx, item) in items.iter().enumerate() {
            if idx > 0 {
                self.out.push(b',');
            }
            let mut inner = ObjectWriter::open(self.out);
            fill(&mut inner, item);
            inner.finish();
        }
        self.out.push(b']');
    }

    pub(crate) fn finish(self) {
        self.out.push(b'}');
    }
}

/// A JSON string, escaped as `serde_json` does.
pub(crate) fn write_str(out: &mut Vec<u8>, value: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn itoa_buffer() -> [u8; 20] {
    [0; 20]
}

/// The decimal digits of `value`, in the tail of `buf`.
fn format_u64(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        // value % 10 < 10 fits a u8.
        buf[start] = b'0' + u8::try_from(value % 10).unwrap_or(0);
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buf[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_are_what_serde_json_writes() {
        for value in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            let mut buf = itoa_buffer();
            assert_eq!(format_u64(value, &mut buf), value.to_string().as_bytes());
        }
        let mut out = Vec::new();
        let mut object = ObjectWriter::open(&mut out);
        object.str("a", Some("quote \" slash \\ tab \t nul \u{0} é"));
        object.str("b", None);
        object.u64("c", Some(42));
        object.object("d", |inner| inner.str("e", Some("f")));
        object.array("g", &[1u64, 2], |inner, n| inner.u64("n", Some(*n)));
        object.raw("h", r#"{"x":[1,2.5]}"#);
        object.finish();
        let expected = serde_json::json!({
            "a": "quote \" slash \\ tab \t nul \u{0} é",
            "c": 42,
            "d": {"e": "f"},
            "g": [{"n": 1}, {"n": 2}],
            "h": {"x": [1, 2.5]},
        });
        assert_eq!(out, serde_json::to_vec(&expected).expect("serialise"));
    }
}
