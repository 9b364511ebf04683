//! Canonical JSON: exactly one text for every JSON value, used for `details` in stored records.
//!
//! The rules (also in `docs/format.md`, "Canonical JSON"):
//!
//! - No whitespace anywhere outside strings.
//! - Object members sorted by the UTF-8 bytes of their (unescaped) keys, ascending; keys are
//!   unique. The order is computed here, never taken from `serde_json::Map`, whose iteration
//!   order changes when any crate in the build enables `preserve_order`.
//! - Strings: UTF-8 written as is, except `"` → `\"`, `\` → `\\`, and the control characters
//!   U+0000..=U+001F: `\b \t \n \f \r` for U+0008, U+0009, U+000A, U+000C, U+000D and
//!   `\u00XX` (lowercase hex) for the others. Nothing else is escaped (not `/`, not U+007F,
//!   not non-ASCII). This is what `serde_json` writes.
//! - Integers (`serde_json` keeps them as `u64` or `i64`): plain decimal, `-` for negatives,
//!   no leading zeros, no `-0`.
//! - Other numbers (`f64`, always finite in a `Value`): the shortest decimal digits that read
//!   back as the same `f64`, laid out by [`write_f64`]'s rules. This matches what
//!   `serde_json` 1.0.154 writes, but the layout is implemented here, so a `serde_json` upgrade
//!   that changes its float printing cannot change stored records.
//!
//! [`parse_canonical`] is the strict inverse: it accepts a text only if
//! [`to_canonical_string`] of the value it reads is that same text, and it reads floats with
//! the standard library's correctly rounded parser (never with `serde_json`'s default parser,
//! which can be off by one unit in the last place), so a stored text always reads back.

use std::fmt::{self, Write as _};

use serde_json::{Map, Number, Value};

/// The canonical text of `value`.
///
/// Recurses once per nesting level: callers bound [`depth`] first for values that do not
/// come from `serde_json`'s parser (which stops at 128 levels).
#[must_use]
pub fn to_canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Appends the canonical text of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    out.push('{');
    // `str`'s `Ord` is lexicographic over UTF-8 bytes: exactly the canonical order.
    if map.keys().is_sorted() {
        write_members(map.iter(), out);
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write_members(members.into_iter(), out);
    }
    out.push('}');
}

fn write_members<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut String) {
    for (idx, (key, value)) in members.enumerate() {
        if idx > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_canonical(value, out);
    }
}

fn write_number(number: &Number, out: &mut String) {
    if let Some(unsigned) = number.as_u64() {
        push_display(out, unsigned);
    } else if let Some(signed) = number.as_i64() {
        push_display(out, signed);
    } else if let Some(float) = number.as_f64() {
        write_f64(float, out);
    }
}

fn push_display(out: &mut String, value: impl fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
}

/// Appends the canonical text of a finite `f64`.
///
/// With `d1 d2 … dn` the shortest digits that read back as `value` (of those, the closest to
/// its exact binary value, and on a tie the one whose last digit is even) and `E` its decimal
/// exponent (`value ≈ d1.d2…dn × 10^E`):
///
/// - zero is `0.0` (`-0.0` for negative zero);
/// - for `-5 <= E <= 15`, positional notation with at least one digit on each side of the
///   point: `100.0`, `12.5`, `0.00015`;
/// - otherwise `d1[.d2…dn]e±E` with the exponent's sign always written and no leading zeros:
///   `1e+16`, `1.5e-7`, `5e-324`.
///
/// A minus sign precedes negative values. Non-finite values (which a `serde_json::Value`
/// cannot hold) are written as `null`.
pub fn write_f64(value: f64, out: &mut String) {
    if !value.is_finite() {
        out.push_str("null");
        return;
    }
    if value.is_sign_negative() {
        out.push('-');
    }
    if value == 0.0 {
        out.push_str("0.0");
        return;
    }
    // The standard library's `{:e}` prints the shortest round-trip digits: `d[.ddd]e[-]E`.
    let mut scratch = StackBuf::default();
    let _ = write!(scratch, "{:e}", value.abs());
    let text = scratch.as_str();
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits = StackBuf::default();
    for &byte in mantissa.as_bytes() {
        if byte.is_ascii_digit() {
            digits.push_byte(byte);
        }
    }
    break_tie_to_even(value.abs(), &mut digits, exponent);
    let digits = digits.as_str();
    let n_digits = digits.len();
    match exponent {
        0..=15 => {
            let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
            if n_digits <= int_len {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len - n_digits));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
        -5..=-1 => {
            out.push_str("0.");
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(digits);
        }
        _ => {
            out.push_str(&digits[..1]);
            if n_digits > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push('e');
            if exponent >= 0 {
                out.push('+');
            }
            push_display(out, exponent);
        }
    }
}

/// Makes the last digit even when `value` lies exactly halfway between two shortest
/// candidates.
///
/// `std` breaks such ties upwards (`581340081208420.25` prints as `…420.3`), while Ryu,
/// `serde_json`, ECMAScript and Python pick the even digit (`…420.2`); the canonical form
/// follows the latter.
fn break_tie_to_even(value: f64, digits: &mut StackBuf, exponent: i32) {
    let n_digits = digits.len;
    let Some(last) = n_digits.checked_sub(1) else {
        return;
    };
    let last_digit = digits.bytes[last].wrapping_sub(b'0');
    if last_digit.is_multiple_of(2) {
        return;
    }
    let Ok(shortest) = digits.as_str().parse::<u64>() else {
        return;
    };
    // The other candidates are `shortest ± 1` in units of the last digit, whose place value
    // is 10^(exponent - n_digits + 1); the midpoints are
    // (10 * shortest ± 5) × 10^(exponent - n_digits).
    let Ok(n_digits_i32) = i32::try_from(n_digits) else {
        return;
    };
    let midpoint_exp = exponent - n_digits_i32;
    let below = (10 * shortest - 5, last_digit - 1);
    let above = (10 * shortest + 5, last_digit + 1);
    for (midpoint, even_digit) in [below, above] {
        // A 9 rounded up would carry; such a tie cannot arise for a shortest representation.
        if even_digit <= 9 && equals_decimal(value, midpoint, midpoint_exp) {
            digits.bytes[last] = b'0' + even_digit;
            return;
        }
    }
}

/// Whether the finite, positive `value` is exactly `odd_mantissa × 10^exp` (`odd_mantissa`
/// odd).
fn equals_decimal(value: f64, odd_mantissa: u64, exp: i32) -> bool {
    let bits = value.to_bits();
    let exp_bits = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1 << 52) - 1);
    let (mut mantissa, mut bin_exp) = if exp_bits == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), exp_bits - 1075)
    };
    if mantissa == 0 {
        return false;
    }
    let zeros = mantissa.trailing_zeros();
    mantissa >>= zeros;
    bin_exp += i32::try_from(zeros).unwrap_or(0);
    // value = mantissa × 2^bin_exp and the decimal = odd_mantissa × 2^exp × 5^exp, with both
    // mantissas odd: the powers of two must agree, then the odd parts.
    if bin_exp != exp {
        return false;
    }
    let five_pow = 5u128.checked_pow(exp.unsigned_abs());
    let (lhs, rhs) = if exp >= 0 {
        (
            Some(u128::from(mantissa)),
            five_pow.and_then(|p| p.checked_mul(u128::from(odd_mantissa))),
        )
    } else {
        (
            five_pow.and_then(|p| p.checked_mul(u128::from(mantissa))),
            Some(u128::from(odd_mantissa)),
        )
    };
    lhs.is_some() && lhs == rhs
}

/// A small fixed buffer for formatting one float without allocating.
struct StackBuf {
    bytes: [u8; 40],
    len: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        Self {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl StackBuf {
    fn push_byte(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What `serde_json` writes after a backslash for each byte below 0x20 (`u` means `\u00XX`).
const CONTROL_ESCAPES: [u8; 32] = [
    b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'b', b't', b'n', b'u', b'f', b'r', b'u', b'u',
    b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u', b'u',
];

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

fn write_string(text: &str, out: &mut String) {
    out.reserve(text.len() + 2);
    out.push('"');
    let bytes = text.as_bytes();
    let mut run_start = 0;
    for (idx, &byte) in bytes.iter().enumerate() {
        if !needs_escape(byte) {
            continue;
        }
        // Escaped bytes are ASCII, so `idx` is a char boundary.
        out.push_str(&text[run_start..idx]);
        run_start = idx + 1;
        out.push('\\');
        match byte {
            b'"' | b'\\' => out.push(char::from(byte)),
            _ => match CONTROL_ESCAPES[usize::from(byte)] {
                b'u' => {
                    out.push_str("u00");
                    out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
                    out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
                }
                short => out.push(char::from(short)),
            },
        }
    }
    out.push_str(&text[run_start..]);
    out.push('"');
}

/// The nesting depth of `value`: 0 for a scalar, 1 for an array or object of scalars (or an
/// empty one), one more per level of nesting. `{"a":{"b":[1]}}` has depth 3.
///
/// Iterative, so it is safe on values of any depth.
#[must_use]
pub fn depth(value: &Value) -> usize {
    let mut max_depth = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((value, level)) = stack.pop() {
        match value {
            Value::Array(items) => {
                max_depth = max_depth.max(level);
                stack.extend(items.iter().map(|child| (child, level + 1)));
            }
            Value::Object(map) => {
                max_depth = max_depth.max(level);
                stack.extend(map.values().map(|child| (child, level + 1)));
            }
            _ => {}
        }
    }
    max_depth
}

/// Whether [`depth`] of `value` is more than `max_depth`; recurses at most `max_depth + 1`
/// levels and stops at the first container that is too deep.
#[must_use]
pub fn exceeds_depth(value: &Value, max_depth: usize) -> bool {
    match (value, max_depth.checked_sub(1)) {
        (Value::Array(_) | Value::Object(_), None) => true,
        (Value::Array(items), Some(below)) => items.iter().any(|item| exceeds_depth(item, below)),
        (Value::Object(map), Some(below)) => map.values().any(|item| exceeds_depth(item, below)),
        _ => false,
    }
}

/// Why a text is not canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {reason}")]
pub struct CanonicalError {
    /// Byte offset in the text where the problem was found.
    pub offset: usize,
    /// What is wrong, as a short phrase.
    pub reason: &'static str,
}

/// Reads a canonical JSON text, nested at most `max_depth` levels (as counted by [`depth`]).
///
/// Accepts `text` if and only if it is [`to_canonical_string`] of the returned value: any
/// whitespace, unsorted or repeated key, non-canonical escape or number spelling is an error.
/// Never panics; recursion is bounded by `max_depth`.
///
/// # Errors
///
/// A [`CanonicalError`] with the byte offset of the first problem.
pub fn parse_canonical(text: &str, max_depth: usize) -> Result<Value, CanonicalError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value(max_depth)?;
    if parser.pos != text.len() {
        return Err(parser.error("trailing characters after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> CanonicalError {
        CanonicalError {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect_byte(&mut self, byte: u8, reason: &'static str) -> Result<(), CanonicalError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn literal(&mut self, literal: &str, value: Value) -> Result<Value, CanonicalError> {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// Reads one value; `levels_left` is how many more containers may be opened.
    fn value(&mut self, levels_left: usize) -> Result<Value, CanonicalError> {
        match self.peek() {
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(b'[') => {
                let below = self.open_container(levels_left)?;
                self.array(below)
            }
            Some(b'{') => {
                let below = self.open_container(levels_left)?;
                self.object(below)
            }
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of text")),
        }
    }

    fn open_container(&mut self, levels_left: usize) -> Result<usize, CanonicalError> {
        let below = levels_left
            .checked_sub(1)
            .ok_or_else(|| self.error("nested too deeply"))?;
        self.pos += 1;
        Ok(below)
    }

    fn array(&mut self, levels_left: usize) -> Result<Value, CanonicalError> {
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(levels_left)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, levels_left: usize) -> Result<Value, CanonicalError> {
        let mut map = Map::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key_offset = self.pos;
            let key = self.string()?;
            // Keys arrive in ascending order, so the map's last key is the previous one.
            if map
                .keys()
                .next_back()
                .is_some_and(|previous| *previous >= key)
            {
                return Err(CanonicalError {
                    offset: key_offset,
                    reason: "object keys are not in strictly ascending byte order",
                });
            }
            self.expect_byte(b':', "expected ':'")?;
            let value = self.value(levels_left)?;
            map.insert(key, value);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    /// Reads a string starting at its opening quote.
    fn string(&mut self) -> Result<String, CanonicalError> {
        self.pos += 1;
        let mut out = String::new();
        let mut run_start = self.pos;
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            if !needs_escape(byte) {
                self.pos += 1;
                continue;
            }
            // `"`, `\` and control bytes are ASCII, so both ends are char boundaries.
            out.push_str(&self.text[run_start..self.pos]);
            match byte {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push(self.escape()?);
                    run_start = self.pos;
                }
                _ => return Err(self.error("unescaped control character in string")),
            }
        }
    }

    /// Reads one escape sequence starting at its backslash; only canonical escapes pass.
    fn escape(&mut self) -> Result<char, CanonicalError> {
        let escape_start = self.pos;
        let not_canonical = || CanonicalError {
            offset: escape_start,
            reason: "escape sequence is not the canonical one",
        };
        let Some(&kind) = self.bytes.get(self.pos + 1) else {
            return Err(self.error("unterminated string"));
        };
        let (decoded, len) = match kind {
            b'"' | b'\\' => (kind, 2),
            b'u' => {
                let Some(&[b'0', b'0', high, low]) = self.bytes.get(self.pos + 2..self.pos + 6)
                else {
                    return Err(not_canonical());
                };
                let high = lower_hex_value(high).ok_or_else(not_canonical)?;
                let low = lower_hex_value(low).ok_or_else(not_canonical)?;
                let byte = (high << 4) | low;
                // Only the control characters without a short escape are written as `\u00XX`.
                if byte >= 0x20 || CONTROL_ESCAPES[usize::from(byte)] != b'u' {
                    return Err(not_canonical());
                }
                (byte, 6)
            }
            short => {
                let byte = (0..0x20u8)
                    .find(|&byte| short != b'u' && CONTROL_ESCAPES[usize::from(byte)] == short)
                    .ok_or_else(not_canonical)?;
                (byte, 2)
            }
        };
        self.pos += len;
        Ok(char::from(decoded))
    }

    /// Reads a number token and checks that it is spelled canonically.
    fn number(&mut self) -> Result<Number, CanonicalError> {
        let start = self.pos;
        let not_canonical = || CanonicalError {
            offset: start,
            reason: "number is not in canonical form",
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error("invalid number")),
        }
        let mut is_integer = true;
        if self.peek() == Some(b'.') {
            is_integer = false;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            is_integer = false;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.skip_digits();
        }
        let token = &self.text[start..self.pos];
        if is_integer {
            // serde_json holds integers as u64 or i64; `-0` and anything wider are floats.
            if let Some(magnitude) = token.strip_prefix('-') {
                if magnitude.starts_with('0') {
                    return Err(not_canonical());
                }
                return token
                    .parse::<i64>()
                    .map(Number::from)
                    .map_err(|_| not_canonical());
            }
            return token
                .parse::<u64>()
                .map(Number::from)
                .map_err(|_| not_canonical());
        }
        let float: f64 = token.parse().map_err(|_| not_canonical())?;
        let number = Number::from_f64(float).ok_or_else(not_canonical)?;
        let mut canonical = String::with_capacity(token.len());
        write_f64(float, &mut canonical);
        if canonical != token {
            return Err(not_canonical());
        }
        Ok(number)
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }
}

fn lower_hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}
