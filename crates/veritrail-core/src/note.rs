//! Signed notes: text signed with Ed25519, the envelope our checkpoints travel in.
//!
//! Implements C2SP `signed-note` (<https://c2sp.org/signed-note>) with the
//! Ed25519 signature type (`0x01`), compatible with the reference
//! implementation `golang.org/x/mod/sumdb/note`, including its key strings:
//!
//! - verifier key: `<name>+<hex8 key id>+<base64(0x01 || 32-byte public key)>`
//! - signer key: `PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 || 32-byte seed)>`
//! - key id: the first 4 bytes, big endian, of
//!   `SHA-256(name || 0x0A || 0x01 || public key)`.
//!
//! A signed note is the text (ending in `\n`), a blank line, then one or more
//! lines `— <name> <base64(key id || signature)>\n` (U+2014 EM DASH, space).
//!
//! Where Go is lenient and the spec allows it, this module is strict, so
//! that everything it emits it also accepts and every accepted input has one
//! encoding: key ids must be lowercase hex (as Go prints them), base64 must be
//! canonical, every signature by a known key is verified (Go skips repeats),
//! verification uses `verify_strict` (rejects small-order keys and
//! malleable signatures, which honest signers never produce), and key names
//! may not contain ASCII control characters (Go allows some in a name, but no
//! note carrying such a name could then be opened).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Largest signed note [`open`] accepts, and [`NoteSigner::sign`] produces: 1 MiB.
///
/// The spec asks verifiers to bound the work a note can cause; a checkpoint
/// is a few hundred bytes, so this only stops abuse.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Most signature lines [`open`] accepts, matching the limit in
/// `golang.org/x/mod/sumdb/note` (the spec requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Signature type identifier byte for Ed25519 (signed-note § Signature types).
const ALG_ED25519: u8 = 0x01;

/// Start of every signature line: U+2014 EM DASH and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Prefix of a signer key string.
const SKEY_PREFIX: &str = "PRIVATE+KEY+";

/// Why a key string, text or signed note was rejected.
///
/// Messages never include secret key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// A key name is empty or contains whitespace, `+` or a control character.
    #[error(
        "invalid key name {0:?}: must be non-empty, without whitespace, '+' or control characters"
    )]
    InvalidKeyName(String),
    /// A verifier key string does not have the expected shape.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    /// A signer key string does not have the expected shape.
    #[error("malformed signer key: {0}")]
    MalformedSignerKey(&'static str),
    /// The key's signature type byte is not Ed25519.
    #[error("unsupported signature type 0x{0:02x}: only Ed25519 (0x01) is supported")]
    UnsupportedAlgorithm(u8),
    /// The key id written in a key string is not the one the key hashes to.
    #[error("key id {found:08x} does not match the key, which has id {expected:08x}")]
    KeyIdMismatch {
        /// The id in the key string.
        found: u32,
        /// The id computed from the name and public key.
        expected: u32,
    },
    /// The public key is a small-order point, for which signatures prove nothing.
    #[error("weak Ed25519 public key (small-order point) rejected")]
    WeakKey,
    /// The text to sign does not meet the spec.
    #[error("invalid note text: {0}")]
    InvalidText(&'static str),
    /// The note exceeds [`MAX_NOTE_SIZE`].
    #[error("signed note is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Size of the (would-be) note in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The note as a whole is malformed.
    #[error("malformed signed note: {0}")]
    Malformed(&'static str),
    /// One signature line is malformed.
    #[error("malformed signed note: signature line {line}: {reason}")]
    MalformedSignatureLine {
        /// 1-based position within the signature block.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("signed note has {found} signature lines, over the limit of {max}")]
    TooManySignatures {
        /// Number of signature lines.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// Two different known keys share a name and key id, so it is unclear
    /// which one a signature claims; the verifier set is misconfigured.
    #[error("ambiguous verifiers: more than one known key is {name}+{key_id:08x}")]
    AmbiguousVerifier {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// A signature by a known key does not verify, so the note is rejected
    /// outright (spec: clients SHOULD reject the whole note).
    #[error("invalid signature by known key {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// The note is well formed but no known key signed it.
    #[error("signed note has no signature by a known key")]
    NoVerifiedSignature,
}

/// An Ed25519 note signing key with its name and key id.
///
/// Holds secret key material: `Debug` shows only public parts, and the
/// underlying key is zeroized on drop by `ed25519-dalek`.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl NoteSigner {
    /// Builds a signer from a key name and a 32-byte Ed25519 seed.
    ///
    /// The core has no RNG: the caller supplies the seed (from a CSPRNG, or a
    /// stored key).
    ///
    /// # Errors
    ///
    /// [`NoteError::InvalidKeyName`] if the name is not a valid key name.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// Parses a signer key string `PRIVATE+KEY+<name>+<hex8 id>+<base64(0x01 || seed)>`.
    ///
    /// # Errors
    ///
    /// Malformed string, invalid name, non-Ed25519 key type, wrong seed
    /// length, or a key id that does not match the key.
    pub fn parse(skey: &str) -> Result<Self, NoteError> {
        let malformed = NoteError::MalformedSignerKey;
        let rest = skey
            .strip_prefix(SKEY_PREFIX)
            .ok_or(malformed("must start with PRIVATE+KEY+"))?;
        // Names cannot contain '+', so the first '+' ends the name; the
        // base64 part may itself contain '+'.
        let (name, rest) = rest
            .split_once('+')
            .ok_or(malformed("expected PRIVATE+KEY+<name>+<id>+<key>"))?;
        let (id, b64) = rest
            .split_once('+')
            .ok_or(malformed("expected PRIVATE+KEY+<name>+<id>+<key>"))?;
        check_name(name)?;
        let found = parse_key_id(id).ok_or(malformed("key id is not 8 lowercase hex digits"))?;
        let mut seed = decode_key(b64).map_err(|e| match e {
            KeyDecodeError::Malformed(reason) => malformed(reason),
            KeyDecodeError::Algorithm(alg) => NoteError::UnsupportedAlgorithm(alg),
        })?;
        let signer = Self::from_seed(name, seed);
        wipe(&mut seed);
        let signer = signer?;
        if signer.key_id != found {
            return Err(NoteError::KeyIdMismatch {
                found,
                expected: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// Formats the signer key string (inverse of [`Self::parse`]).
    ///
    /// The result contains the secret seed: store it like a private key.
    #[must_use]
    pub fn to_skey_string(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        let s = format!(
            "{SKEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(raw)
        );
        wipe(&mut raw);
        s
    }

    /// The key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier.
    #[must_use]
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` and returns the whole signed note, with this signer's
    /// single signature line.
    ///
    /// # Errors
    ///
    /// [`NoteError::InvalidText`] if the text is empty, does not end in a
    /// newline or contains an ASCII control character other than newline;
    /// [`NoteError::TooLarge`] if the note would exceed [`MAX_NOTE_SIZE`].
    /// Both ensure [`open`] accepts whatever this returns.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() {
            return Err(NoteError::InvalidText("text is empty"));
        }
        if !text.ends_with('\n') {
            return Err(NoteError::InvalidText("text does not end with a newline"));
        }
        if has_forbidden_control(text) {
            return Err(NoteError::InvalidText(
                "text contains an ASCII control character other than newline",
            ));
        }
        // blank line + "— " + name + " " + base64 of 68 bytes (92 chars) + "\n"
        let size = text.len() + 1 + SIG_PREFIX.len() + self.name.len() + 1 + 92 + 1;
        if size > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size,
                max: MAX_NOTE_SIZE,
            });
        }
        let sig = self.key.sign(text.as_bytes());
        let mut blob = [0u8; 68];
        blob[..4].copy_from_slice(&self.key_id.to_be_bytes());
        blob[4..].copy_from_slice(&sig.to_bytes());
        let note = format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(blob)
        );
        debug_assert_eq!(note.len(), size);
        Ok(note)
    }
}

impl fmt::Debug for NoteSigner {
    // Only public parts: the seed must never end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// An Ed25519 note verification key with its name and key id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key string `<name>+<hex8 id>+<base64(0x01 || public key)>`.
    ///
    /// # Errors
    ///
    /// Malformed string, invalid name, non-Ed25519 key type, wrong key
    /// length, invalid or small-order public key, or a key id that does not
    /// match the recomputed one.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let malformed = NoteError::MalformedVerifierKey;
        // Names cannot contain '+', so the first '+' ends the name; the
        // base64 part may itself contain '+'.
        let (name, rest) = vkey
            .split_once('+')
            .ok_or(malformed("expected <name>+<id>+<key>"))?;
        let (id, b64) = rest
            .split_once('+')
            .ok_or(malformed("expected <name>+<id>+<key>"))?;
        check_name(name)?;
        let found = parse_key_id(id).ok_or(malformed("key id is not 8 lowercase hex digits"))?;
        let raw = decode_key(b64).map_err(|e| match e {
            KeyDecodeError::Malformed(reason) => malformed(reason),
            KeyDecodeError::Algorithm(alg) => NoteError::UnsupportedAlgorithm(alg),
        })?;
        let expected = key_id(name, &raw);
        if found != expected {
            return Err(NoteError::KeyIdMismatch { found, expected });
        }
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|_| malformed("public key is not a valid Ed25519 point"))?;
        if key.is_weak() {
            return Err(NoteError::WeakKey);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: found,
            key,
        })
    }

    /// Formats the verifier key string (inverse of [`Self::parse`]).
    #[must_use]
    pub fn to_vkey_string(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(raw))
    }

    /// The key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
}

impl fmt::Debug for NoteVerifier {
    // The key string is the familiar, compact form of all three fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NoteVerifier")
            .field(&self.to_vkey_string())
            .finish()
    }
}

/// The result of [`open`]: the signed text and who verifiably signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    /// The note text, including its final newline.
    pub text: String,
    /// `(name, key id)` of each known key whose signature verified, in order
    /// of first appearance, without duplicates.
    pub verified_by: Vec<(String, u32)>,
}

/// Verifies a signed note against a set of known verifiers and returns its text.
///
/// Following the spec: signatures whose (name, key id) pair matches no known
/// verifier are ignored, even if one of the two matches; every signature by a
/// known verifier must verify, else the whole note is rejected; at least one
/// must verify. The signature block is parsed strictly, and the size and
/// signature-count limits ([`MAX_NOTE_SIZE`], [`MAX_SIGNATURES`]) apply.
///
/// # Errors
///
/// See [`NoteError`]: malformed note or signature line, limits exceeded,
/// ambiguous verifiers, invalid signature by a known key, or no signature by
/// a known key.
pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<OpenedNote, NoteError> {
    if note.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: note.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    if has_forbidden_control(note) {
        return Err(NoteError::Malformed(
            "contains an ASCII control character other than newline",
        ));
    }
    // The text may itself contain blank lines: the signatures start after the
    // last one (signature lines are never empty).
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(NoteError::Malformed(
            "no signature lines after the blank line",
        ));
    }
    let sigs = sigs.strip_suffix('\n').ok_or(NoteError::Malformed(
        "last signature line does not end with a newline",
    ))?;
    let count = sigs.split('\n').count();
    if count > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            found: count,
            max: MAX_SIGNATURES,
        });
    }

    // Parse the whole block before verifying anything, so a malformed line
    // is reported as such wherever it sits.
    let lines = sigs
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            parse_signature_line(line).map_err(|reason| NoteError::MalformedSignatureLine {
                line: i + 1,
                reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut verified_by: Vec<(String, u32)> = Vec::new();
    for sig in lines {
        let mut known = verifiers
            .iter()
            .filter(|v| v.name == sig.name && v.key_id == sig.key_id);
        let Some(verifier) = known.next() else {
            // Unknown key: the spec says MUST ignore (e.g. witness cosignatures).
            continue;
        };
        if known.any(|other| other.key != verifier.key) {
            return Err(NoteError::AmbiguousVerifier {
                name: sig.name.to_owned(),
                key_id: sig.key_id,
            });
        }
        let invalid = || NoteError::InvalidSignature {
            name: sig.name.to_owned(),
            key_id: sig.key_id,
        };
        let bytes: &[u8; 64] = sig.signature.as_slice().try_into().map_err(|_| invalid())?;
        verifier
            .key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(bytes))
            .map_err(|_| invalid())?;
        if !verified_by
            .iter()
            .any(|(n, id)| n == sig.name && *id == sig.key_id)
        {
            verified_by.push((sig.name.to_owned(), sig.key_id));
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoVerifiedSignature);
    }
    Ok(OpenedNote {
        text: text.to_owned(),
        verified_by,
    })
}

/// One syntactically valid signature line, not yet verified.
struct SignatureLine<'a> {
    name: &'a str,
    key_id: u32,
    signature: Vec<u8>,
}

impl<'a> SignatureLine<'a> {
    fn new(name: &'a str, mut blob: Vec<u8>) -> Self {
        let signature = blob.split_off(4);
        let key_id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
        Self {
            name,
            key_id,
            signature,
        }
    }
}

fn parse_signature_line(line: &str) -> Result<SignatureLine<'_>, &'static str> {
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or("does not start with an em dash (U+2014) and a space")?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or("expected a key name, a space and a base64 signature")?;
    if !is_valid_name(name) {
        return Err("invalid key name");
    }
    let blob = BASE64
        .decode(b64)
        .map_err(|_| "signature is not canonical padded standard base64")?;
    // A key id and at least one signature byte, as in Go; the exact length
    // is the signature type's business, checked only for known keys.
    if blob.len() < 5 {
        return Err("signature is shorter than a key id plus one byte");
    }
    Ok(SignatureLine::new(name, blob))
}

/// Key names as in Go's `isValidName` (non-empty, no Unicode whitespace, no
/// '+'; Rust's `char::is_whitespace` and Go's `unicode.IsSpace` cover the same
/// set), additionally without ASCII control characters, which no note may carry.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < '\u{20}')
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName(name.to_owned()))
    }
}

fn has_forbidden_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 && b != b'\n')
}

/// The recommended key id: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`.
fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ALG_ED25519])
        .chain_update(public_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Exactly 8 lowercase hex digits, the form Go prints (`%08x`), so that key
/// strings round-trip byte for byte.
fn parse_key_id(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

enum KeyDecodeError {
    Malformed(&'static str),
    Algorithm(u8),
}

/// Decodes `base64(0x01 || 32 bytes)` to the 32 bytes.
fn decode_key(b64: &str) -> Result<[u8; 32], KeyDecodeError> {
    let mut raw = BASE64
        .decode(b64)
        .map_err(|_| KeyDecodeError::Malformed("key is not canonical padded standard base64"))?;
    let result = match raw.split_first() {
        None => Err(KeyDecodeError::Malformed("key is empty")),
        Some((&alg, _)) if alg != ALG_ED25519 => Err(KeyDecodeError::Algorithm(alg)),
        Some((_, key)) => <[u8; 32]>::try_from(key)
            .map_err(|_| KeyDecodeError::Malformed("Ed25519 key is not 32 bytes")),
    };
    // The buffer may hold a private seed.
    wipe(&mut raw);
    result
}

/// Best-effort erasure of secret bytes; `black_box` keeps the compiler from
/// dropping the writes as dead stores.
fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}
