//! The checkpoint body: the text a log signs to commit to its Merkle tree head.
//!
//! Implements the note text of C2SP `tlog-checkpoint`
//! (<https://c2sp.org/tlog-checkpoint>):
//!
//! ```text
//! <origin>\n
//! <tree size, ASCII decimal, no leading zeros>\n
//! <base64 (standard, padded) of the 32-byte root hash>\n
//! [<extension line>\n]...
//! ```
//!
//! Signing and verifying the body is the job of [`crate::note`]; this module
//! only builds and parses the text. Parsing is strict: a body is accepted only
//! if [`Checkpoint::to_body`] would reproduce it byte for byte, so two parties
//! that agree on a [`Checkpoint`] value always agree on the signed bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Why a checkpoint could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The origin line is empty.
    #[error("checkpoint origin must not be empty")]
    EmptyOrigin,
    /// A line (origin or extension) contains a newline or an ASCII control
    /// character, which a signed note may not carry.
    #[error("checkpoint {what} contains a newline or an ASCII control character")]
    InvalidLineCharacter {
        /// Which line: "origin" or "extension line".
        what: &'static str,
    },
    /// An extension line is empty.
    #[error("checkpoint extension lines must not be empty")]
    EmptyExtension,
    /// The body does not end with a newline.
    #[error("checkpoint body must end with a newline")]
    MissingFinalNewline,
    /// The body has fewer than the three mandatory lines.
    #[error("checkpoint body has {found} lines, expected at least 3 (origin, size, root hash)")]
    TooFewLines {
        /// Number of lines found.
        found: usize,
    },
    /// A line of the body is empty.
    #[error("checkpoint body line {line} is empty")]
    EmptyLine {
        /// 1-based line number.
        line: usize,
    },
    /// The tree size line is not canonical decimal or does not fit in a u64.
    #[error("checkpoint tree size {0:?} is not a decimal u64 without leading zeros")]
    InvalidSize(String),
    /// The root hash line is not canonical padded standard base64.
    #[error("checkpoint root hash {0:?} is not valid padded standard base64")]
    InvalidRootEncoding(String),
    /// The root hash decodes to the wrong number of bytes.
    #[error("checkpoint root hash is {0} bytes, expected 32")]
    InvalidRootLength(usize),
}

/// A parsed, well-formed checkpoint body.
///
/// Values exist only through [`Checkpoint::new`], [`Checkpoint::with_extensions`]
/// and [`Checkpoint::parse`], all of which check the format, so every value
/// serialises to a valid body and [`Checkpoint::to_body`] cannot fail.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: [u8; 32],
    extensions: Vec<String>,
}

impl Checkpoint {
    /// Builds a checkpoint without extension lines.
    ///
    /// # Errors
    ///
    /// The origin must be non-empty and contain no newline or other ASCII
    /// control character (the body is the text of a signed note, which may not
    /// carry control characters).
    pub fn new(
        origin: impl Into<String>,
        size: u64,
        root: [u8; 32],
    ) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        check_line_chars(&origin, "origin")?;
        Ok(Self {
            origin,
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// Replaces the extension lines.
    ///
    /// The spec does not recommend extension lines (monitors cannot audit
    /// them), but they are part of the format, so a parsed body keeps them.
    ///
    /// # Errors
    ///
    /// Each line must be non-empty and contain no newline or other ASCII
    /// control character.
    pub fn with_extensions<I, S>(mut self, extensions: I) -> Result<Self, CheckpointError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let extensions: Vec<String> = extensions.into_iter().map(Into::into).collect();
        for ext in &extensions {
            if ext.is_empty() {
                return Err(CheckpointError::EmptyExtension);
            }
            check_line_chars(ext, "extension line")?;
        }
        self.extensions = extensions;
        Ok(self)
    }

    /// The log identity that issued the checkpoint.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves in the tree.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root hash of the tree at [`Self::size`].
    #[must_use]
    pub fn root(&self) -> &[u8; 32] {
        &self.root
    }

    /// The opaque extension lines, without their newlines.
    #[must_use]
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Serialises the checkpoint to its note text; every line, including the
    /// last, ends in `\n`.
    #[must_use]
    pub fn to_body(&self) -> String {
        let root = BASE64.encode(self.root);
        let ext_len: usize = self.extensions.iter().map(|e| e.len() + 1).sum();
        let mut body = String::with_capacity(self.origin.len() + 22 + root.len() + 1 + ext_len);
        body.push_str(&self.origin);
        body.push('\n');
        body.push_str(&self.size.to_string());
        body.push('\n');
        body.push_str(&root);
        body.push('\n');
        for ext in &self.extensions {
            body.push_str(ext);
            body.push('\n');
        }
        body
    }

    /// Parses a checkpoint body (the text of a signed note, signatures
    /// already removed).
    ///
    /// Strict: only the exact bytes [`Self::to_body`] produces are accepted,
    /// so the signed text and the parsed value cannot disagree.
    ///
    /// # Errors
    ///
    /// Any deviation from the format: missing final newline, fewer than three
    /// lines, empty lines, non-canonical tree size, root hash that is not
    /// canonical padded base64 of exactly 32 bytes, control characters.
    pub fn parse(body: &str) -> Result<Self, CheckpointError> {
        let Some(body) = body.strip_suffix('\n') else {
            return Err(CheckpointError::MissingFinalNewline);
        };
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            // An empty body (just "\n") splits into one empty line; report it
            // as too short rather than as an empty line.
            return Err(CheckpointError::TooFewLines { found: lines.len() });
        }
        if let Some(i) = lines.iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyLine { line: i + 1 });
        }
        let size = parse_size(lines[1])?;
        let root = parse_root(lines[2])?;
        Self::new(lines[0], size, root)?.with_extensions(lines[3..].iter().copied())
    }
}

/// Rejects newlines (which would split the line) and other ASCII control
/// characters (which signed-note forbids in the note text).
fn check_line_chars(line: &str, what: &'static str) -> Result<(), CheckpointError> {
    if line.bytes().any(|b| b < 0x20) {
        return Err(CheckpointError::InvalidLineCharacter { what });
    }
    Ok(())
}

fn parse_size(s: &str) -> Result<u64, CheckpointError> {
    let err = || CheckpointError::InvalidSize(s.to_owned());
    // `u64::from_str` would also accept a leading '+', and leading zeros would
    // give the same value two encodings; only the canonical form is allowed.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(err());
    }
    s.parse().map_err(|_| err())
}

fn parse_root(s: &str) -> Result<[u8; 32], CheckpointError> {
    // The STANDARD engine requires canonical padding and zero trailing bits,
    // so each byte string has exactly one accepted encoding.
    let bytes = BASE64
        .decode(s)
        .map_err(|_| CheckpointError::InvalidRootEncoding(s.to_owned()))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| CheckpointError::InvalidRootLength(len))
}
