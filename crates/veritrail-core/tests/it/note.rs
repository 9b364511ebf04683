//! Signed notes (c2sp.org/signed-note) and checkpoint bodies
//! (c2sp.org/tlog-checkpoint): known answers from the Go reference
//! implementation, rejections, and round-trip properties.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use veritrail_core::note::{
    MAX_NOTE_SIZE, MAX_SIGNATURES, NoteError, NoteSigner, NoteVerifier, OpenedNote, open,
};

const VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/vectors/signed-note/peterneumann.json"
);

struct Vector {
    signer_key: String,
    verifier_key: String,
    text: String,
    signed_note: String,
}

fn vector() -> Vector {
    let json = std::fs::read_to_string(VECTOR).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let field = |k: &str| v[k].as_str().unwrap().to_owned();
    Vector {
        signer_key: field("signer_key"),
        verifier_key: field("verifier_key"),
        text: field("text"),
        signed_note: field("signed_note"),
    }
}

fn signer(name: &str, seed_byte: u8) -> NoteSigner {
    NoteSigner::from_seed(name, [seed_byte; 32]).unwrap()
}

/// Independent computation of the recommended key id, to build key strings by hand.
fn key_id(name: &str, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', 0x01]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Splits the vector's note into text and its one signature line's parts.
fn vector_sig_parts(v: &Vector) -> (String, Vec<u8>) {
    let line = v.signed_note.strip_prefix(&v.text).unwrap();
    let line = line.strip_prefix("\n\u{2014} PeterNeumann ").unwrap();
    let b64 = line.strip_suffix('\n').unwrap();
    (b64.to_owned(), BASE64.decode(b64).unwrap())
}

fn with_sig(text: &str, name: &str, blob: &[u8]) -> String {
    format!("{text}\n\u{2014} {name} {}\n", BASE64.encode(blob))
}

// ---------------------------------------------------------------- known answer

#[test]
fn known_answer_sign_matches_go() {
    let v = vector();
    let signer = NoteSigner::parse(&v.signer_key).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f_20a3);
    assert_eq!(signer.sign(&v.text).unwrap(), v.signed_note);
    assert_eq!(signer.to_skey_string(), v.signer_key);
    assert_eq!(signer.verifier().to_vkey_string(), v.verifier_key);
}

#[test]
fn known_answer_verifier_round_trip_and_open() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.key_id(), 0xc74f_20a3);
    assert_eq!(verifier.to_vkey_string(), v.verifier_key);
    let signer = NoteSigner::parse(&v.signer_key).unwrap();
    assert_eq!(signer.verifier(), verifier);

    let opened = open(&v.signed_note, &[verifier]).unwrap();
    assert_eq!(
        opened,
        OpenedNote {
            text: v.text.clone(),
            verified_by: vec![("PeterNeumann".to_owned(), 0xc74f_20a3)],
        }
    );
}

#[test]
fn key_id_is_sha256_of_name_newline_alg_key() {
    let s = signer("example.com/log", 7);
    let vkey = s.verifier().to_vkey_string();
    let raw = BASE64.decode(vkey.splitn(3, '+').nth(2).unwrap()).unwrap();
    assert_eq!(raw[0], 0x01);
    assert_eq!(s.key_id(), key_id("example.com/log", &raw[1..]));
}

#[test]
fn debug_does_not_leak_the_seed() {
    let v = vector();
    let signer = NoteSigner::parse(&v.signer_key).unwrap();
    let debug = format!("{signer:?}");
    let seed_b64 = v.signer_key.splitn(5, '+').nth(4).unwrap();
    let seed = BASE64.decode(seed_b64).unwrap();
    let seed_hex: String = seed[1..].iter().map(|b| format!("{b:02x}")).collect();
    assert!(!debug.contains(seed_b64), "{debug}");
    assert!(!debug.contains(&seed_hex), "{debug}");
    assert!(!debug.contains(&format!("{:?}", &seed[1..])), "{debug}");
    assert!(
        debug.contains("PeterNeumann") && debug.contains("c74f20a3"),
        "{debug}"
    );
}

// ---------------------------------------------------------------- open: accept

#[test]
fn unknown_signers_are_ignored_alongside_a_known_one() {
    let log = signer("log.example", 1);
    let witness = signer("witness.example", 2);
    let text = "hello\n";
    let note = log.sign(text).unwrap();
    let cosig = witness.sign(text).unwrap();
    let cosig_line = cosig.strip_prefix("hello\n\n").unwrap();
    let both = format!("{note}{cosig_line}");

    let opened = open(&both, &[log.verifier()]).unwrap();
    assert_eq!(opened.text, text);
    assert_eq!(
        opened.verified_by,
        vec![("log.example".to_owned(), log.key_id())]
    );

    let opened = open(&both, &[witness.verifier(), log.verifier()]).unwrap();
    assert_eq!(
        opened.verified_by,
        vec![
            ("log.example".to_owned(), log.key_id()),
            ("witness.example".to_owned(), witness.key_id()),
        ]
    );
}

#[test]
fn repeated_signature_is_listed_once() {
    let s = signer("a", 1);
    let note = s.sign("x\n").unwrap();
    let line = note.strip_prefix("x\n\n").unwrap();
    let twice = format!("{note}{line}");
    let opened = open(&twice, &[s.verifier()]).unwrap();
    assert_eq!(opened.verified_by.len(), 1);
}

#[test]
fn text_with_blank_lines_splits_at_the_last_one() {
    let s = signer("a", 1);
    for text in ["\n", "a\n\nb\n", "a\n\n\n", "\u{2014} a AAAA\n\n"] {
        let note = s.sign(text).unwrap();
        assert_eq!(open(&note, &[s.verifier()]).unwrap().text, text, "{text:?}");
    }
}

#[test]
fn spec_example_parses_but_is_unverified() {
    // The example from c2sp.org/signed-note: its text has a blank line of its
    // own, and we do not know its key, so it must parse and then fail only
    // for lack of a known signature.
    let note = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \
                è subito sera.\n\n\u{2014} quasimodo.example/salvatore \
                NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
    let err = open(note, &[signer("quasimodo.example/salvatore", 1).verifier()]).unwrap_err();
    assert_eq!(err, NoteError::NoVerifiedSignature);
}

// ---------------------------------------------------------------- open: reject

#[test]
fn flipped_signature_bit_is_rejected() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    let (_, blob) = vector_sig_parts(&v);
    for bit in [4 * 8, 20 * 8 + 3, 67 * 8 + 7] {
        let mut bad = blob.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let note = with_sig(&v.text, "PeterNeumann", &bad);
        assert_eq!(
            open(&note, std::slice::from_ref(&verifier)).unwrap_err(),
            NoteError::InvalidSignature {
                name: "PeterNeumann".to_owned(),
                key_id: 0xc74f_20a3
            },
            "bit {bit}"
        );
    }
}

#[test]
fn changed_text_byte_is_rejected() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    let note = v.signed_note.replacen("cryptography", "cryptographY", 1);
    assert!(matches!(
        open(&note, &[verifier]).unwrap_err(),
        NoteError::InvalidSignature { .. }
    ));
}

#[test]
fn bad_signature_by_known_key_rejects_even_with_a_good_one() {
    let a = signer("a", 1);
    let b = signer("b", 2);
    let good = a.sign("t\n").unwrap();
    let other = b.sign("different\n").unwrap();
    let bad_line = other.strip_prefix("different\n\n").unwrap();
    let note = format!("{good}{bad_line}");
    assert_eq!(
        open(&note, &[a.verifier(), b.verifier()]).unwrap_err(),
        NoteError::InvalidSignature {
            name: "b".to_owned(),
            key_id: b.key_id()
        }
    );
    // Without b's key, its signature is just an unknown one.
    assert!(open(&note, &[a.verifier()]).is_ok());
}

#[test]
fn wrong_key_id_or_name_in_signature_line_is_unknown() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    let (_, mut blob) = vector_sig_parts(&v);
    blob[3] ^= 1;
    let note = with_sig(&v.text, "PeterNeumann", &blob);
    assert_eq!(
        open(&note, std::slice::from_ref(&verifier)).unwrap_err(),
        NoteError::NoVerifiedSignature
    );
    let (_, blob) = vector_sig_parts(&v);
    let note = with_sig(&v.text, "PeterNeuman", &blob);
    assert_eq!(
        open(&note, &[verifier]).unwrap_err(),
        NoteError::NoVerifiedSignature
    );
}

#[test]
fn unknown_key_only_is_rejected() {
    let v = vector();
    assert_eq!(
        open(&v.signed_note, &[]).unwrap_err(),
        NoteError::NoVerifiedSignature
    );
    assert_eq!(
        open(&v.signed_note, &[signer("other", 9).verifier()]).unwrap_err(),
        NoteError::NoVerifiedSignature
    );
}

#[test]
fn wrong_signature_length_for_known_key_is_invalid() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    let (_, blob) = vector_sig_parts(&v);
    for len in [5, 67, 69] {
        let mut b = blob.clone();
        b.resize(len, 0);
        let note = with_sig(&v.text, "PeterNeumann", &b);
        assert!(
            matches!(
                open(&note, std::slice::from_ref(&verifier)).unwrap_err(),
                NoteError::InvalidSignature { .. }
            ),
            "len {len}"
        );
    }
}

#[test]
fn missing_blank_line_is_rejected() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    let note = v.signed_note.replacen("is.\n\n", "is.\n", 1);
    assert!(matches!(
        open(&note, &[verifier]).unwrap_err(),
        NoteError::Malformed(_)
    ));
}

#[test]
fn malformed_signature_lines_are_rejected() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    let (b64, _) = vector_sig_parts(&v);
    let short = BASE64.encode([1, 2, 3, 4]);
    let unpadded = b64.trim_end_matches('=');
    let lines = [
        format!("- PeterNeumann {b64}"),              // ASCII hyphen
        format!("\u{2013} PeterNeumann {b64}"),       // en dash
        format!("\u{2014}PeterNeumann {b64}"),        // no space after dash
        format!("\u{2014}  PeterNeumann {b64}"),      // empty name
        format!("\u{2014} PeterNeumann  {b64}"),      // two spaces
        format!("\u{2014} PeterNeumann {b64} "),      // trailing space
        "\u{2014} PeterNeumann".to_owned(),           // no signature
        "\u{2014} PeterNeumann ".to_owned(),          // empty signature
        format!("\u{2014} Peter+Neumann {b64}"),      // '+' in name
        format!("\u{2014} Peter\u{a0}Neumann {b64}"), // Unicode space in name
        format!("\u{2014} PeterNeumann {unpadded}"),  // missing padding
        format!("\u{2014} PeterNeumann {b64}!"),      // not base64
        format!("\u{2014} PeterNeumann {short}"),     // key id only
        String::new(),                                // empty line in block
    ];
    for line in &lines {
        let note = format!("{}\n{line}\n", v.text);
        let err = open(&note, std::slice::from_ref(&verifier)).unwrap_err();
        assert!(
            matches!(
                err,
                NoteError::MalformedSignatureLine { line: 1, .. } | NoteError::Malformed(_)
            ),
            "{line:?}: {err:?}"
        );
        // A malformed line anywhere is fatal, even next to a good signature.
        let note = format!("{}{line}\n", v.signed_note);
        assert!(
            open(&note, std::slice::from_ref(&verifier)).is_err(),
            "{line:?}"
        );
    }
}

#[test]
fn trailing_garbage_is_rejected() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    let trimmed = v.signed_note.strip_suffix('\n').unwrap();
    let cases = [
        trimmed.to_owned(),                    // no final newline
        format!("{}\n", v.signed_note),        // extra blank line
        format!("{}garbage\n", v.signed_note), // extra non-signature line
        format!("{}garbage", v.signed_note),   // unterminated garbage
        format!("{} ", v.signed_note),         // trailing space
    ];
    for note in &cases {
        assert!(
            open(note, std::slice::from_ref(&verifier)).is_err(),
            "{note:?}"
        );
    }
}

#[test]
fn control_characters_are_rejected() {
    let v = vector();
    let verifier = NoteVerifier::parse(&v.verifier_key).unwrap();
    for c in ['\r', '\t', '\0'] {
        let note = v.signed_note.replacen(' ', &c.to_string(), 1);
        assert_eq!(
            open(&note, std::slice::from_ref(&verifier)).unwrap_err(),
            NoteError::Malformed("contains an ASCII control character other than newline")
        );
    }
}

#[test]
fn signature_count_limit() {
    let s = signer("a", 1);
    let note = s.sign("x\n").unwrap();
    let line = note.strip_prefix("x\n\n").unwrap();
    let at_limit = format!("x\n\n{}", line.repeat(MAX_SIGNATURES));
    assert!(open(&at_limit, &[s.verifier()]).is_ok());
    let over = format!("{at_limit}{line}");
    assert_eq!(
        open(&over, &[s.verifier()]).unwrap_err(),
        NoteError::TooManySignatures {
            found: MAX_SIGNATURES + 1,
            max: MAX_SIGNATURES
        }
    );
}

#[test]
fn size_limit() {
    let s = signer("a", 1);
    let big = "a".repeat(MAX_NOTE_SIZE - 1) + "\n";
    assert!(matches!(
        s.sign(&big).unwrap_err(),
        NoteError::TooLarge { .. }
    ));
    // The largest text that fits still opens.
    let overhead = s.sign("\n").unwrap().len() - 1;
    let fits = "a".repeat(MAX_NOTE_SIZE - overhead - 1) + "\n";
    let note = s.sign(&fits).unwrap();
    assert_eq!(note.len(), MAX_NOTE_SIZE);
    assert!(open(&note, &[s.verifier()]).is_ok());
    let over = format!("a{note}");
    assert!(matches!(
        open(&over, &[s.verifier()]).unwrap_err(),
        NoteError::TooLarge { .. }
    ));
}

#[test]
fn sign_rejects_bad_text() {
    let s = signer("a", 1);
    for text in ["", "no newline", "tab\there\n", "cr\r\n"] {
        assert!(
            matches!(s.sign(text).unwrap_err(), NoteError::InvalidText(_)),
            "{text:?}"
        );
    }
}

// ---------------------------------------------------------------- key strings

/// Predicate on the error a rejected key string must produce.
type ErrorCheck = fn(&NoteError) -> bool;

#[test]
fn from_seed_rejects_bad_names() {
    for name in ["", "a b", "a+b", "a\tb", "a\nb", "a\u{3000}b", "a\u{1}b"] {
        assert_eq!(
            NoteSigner::from_seed(name, [0; 32]).unwrap_err(),
            NoteError::InvalidKeyName(name.to_owned()),
            "{name:?}"
        );
    }
    assert!(NoteSigner::from_seed("example.com/log/\u{e9}", [0; 32]).is_ok());
}

#[test]
fn verifier_key_rejections() {
    let v = vector();
    let good = &v.verifier_key; // PeterNeumann+c74f20a3+ARpc...
    // The base64 part itself contains '+'.
    let key_b64 = good.splitn(3, '+').nth(2).unwrap();
    let key = BASE64.decode(key_b64).unwrap();
    let mut alg2 = key.clone();
    alg2[0] = 0x02;
    let alg2_id = key_id("PeterNeumann", &alg2[1..]);

    let cases: Vec<(String, ErrorCheck)> = vec![
        (String::new(), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        ("PeterNeumann".into(), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        ("PeterNeumann+c74f20a3".into(), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (format!("+c74f20a3+{key_b64}"), |e| {
            matches!(e, NoteError::InvalidKeyName(_))
        }),
        (format!("Peter Neumann+c74f20a3+{key_b64}"), |e| {
            matches!(e, NoteError::InvalidKeyName(_))
        }),
        (format!("PeterNeumann+C74F20A3+{key_b64}"), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (format!("PeterNeumann+c74f20a+{key_b64}"), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (format!("PeterNeumann+0c74f20a3+{key_b64}"), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (format!("PeterNeumann+c74f20ag+{key_b64}"), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (format!("PeterNeumann+c74f20a4+{key_b64}"), |e| {
            *e == NoteError::KeyIdMismatch {
                found: 0xc74f_20a4,
                expected: 0xc74f_20a3,
            }
        }),
        (
            format!("PeterNeumann+c74f20a3+{}", BASE64.encode(&alg2)),
            |e| *e == NoteError::UnsupportedAlgorithm(0x02),
        ),
        (
            format!("PeterNeumann+{alg2_id:08x}+{}", BASE64.encode(&alg2)),
            |e| *e == NoteError::UnsupportedAlgorithm(0x02),
        ),
        (
            format!("PeterNeumann+c74f20a3+{}", BASE64.encode(&key[..32])),
            |e| matches!(e, NoteError::MalformedVerifierKey(_)),
        ),
        (
            format!(
                "PeterNeumann+c74f20a3+{}",
                BASE64.encode([&key[..], &[0]].concat())
            ),
            |e| matches!(e, NoteError::MalformedVerifierKey(_)),
        ),
        ("PeterNeumann+c74f20a3+".into(), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (
            format!("PeterNeumann+c74f20a3+{}", &key_b64[..key_b64.len() - 1]),
            |e| matches!(e, NoteError::MalformedVerifierKey(_)),
        ),
        (format!("{good}\n"), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (format!("{good} "), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
        (format!("PRIVATE+KEY+{good}"), |e| {
            matches!(e, NoteError::MalformedVerifierKey(_))
        }),
    ];
    for (vkey, expected) in &cases {
        let err = NoteVerifier::parse(vkey).unwrap_err();
        assert!(expected(&err), "{vkey:?}: {err:?}");
    }
}

#[test]
fn small_order_public_key_is_rejected() {
    // The identity point: any signature with R = identity and s = 0 would
    // "verify" under it.
    let mut raw = [0u8; 33];
    raw[0] = 0x01;
    raw[1] = 0x01;
    let vkey = format!(
        "weak+{:08x}+{}",
        key_id("weak", &raw[1..]),
        BASE64.encode(raw)
    );
    assert_eq!(NoteVerifier::parse(&vkey).unwrap_err(), NoteError::WeakKey);
}

#[test]
fn signer_key_rejections() {
    let v = vector();
    let good = &v.signer_key; // PRIVATE+KEY+PeterNeumann+c74f20a3+AYEK...
    let seed_b64 = good.splitn(5, '+').nth(4).unwrap();
    let seed = BASE64.decode(seed_b64).unwrap();
    let mut alg2 = seed.clone();
    alg2[0] = 0x02;

    let cases: Vec<(String, ErrorCheck)> = vec![
        (v.verifier_key.clone(), |e| {
            matches!(e, NoteError::MalformedSignerKey(_))
        }),
        (good.replacen("PRIVATE", "private", 1), |e| {
            matches!(e, NoteError::MalformedSignerKey(_))
        }),
        (good.replacen("PRIVATE+KEY+", "PRIVATE+KEYS+", 1), |e| {
            matches!(
                e,
                NoteError::KeyIdMismatch { .. } | NoteError::MalformedSignerKey(_)
            )
        }),
        (
            good.replacen("PeterNeumann", "Peter\u{2003}Neumann", 1),
            |e| matches!(e, NoteError::InvalidKeyName(_)),
        ),
        (good.replacen("PeterNeumann", "", 1), |e| {
            matches!(e, NoteError::InvalidKeyName(_))
        }),
        (good.replacen("c74f20a3", "c74f20a4", 1), |e| {
            *e == NoteError::KeyIdMismatch {
                found: 0xc74f_20a4,
                expected: 0xc74f_20a3,
            }
        }),
        (good.replacen("c74f20a3", "C74F20A3", 1), |e| {
            matches!(e, NoteError::MalformedSignerKey(_))
        }),
        (good.replacen("PeterNeumann", "PaulNeumann", 1), |e| {
            matches!(e, NoteError::KeyIdMismatch { .. })
        }),
        (good.replacen(seed_b64, &BASE64.encode(&alg2), 1), |e| {
            *e == NoteError::UnsupportedAlgorithm(0x02)
        }),
        (
            good.replacen(seed_b64, &BASE64.encode(&seed[..32]), 1),
            |e| matches!(e, NoteError::MalformedSignerKey(_)),
        ),
        (good.replacen(seed_b64, "", 1), |e| {
            matches!(e, NoteError::MalformedSignerKey(_))
        }),
        (format!("{good}\n"), |e| {
            matches!(e, NoteError::MalformedSignerKey(_))
        }),
    ];
    for (skey, expected) in &cases {
        let err = NoteSigner::parse(skey).unwrap_err();
        assert!(expected(&err), "{skey:?}: {err:?}");
        // Error messages must not echo the secret seed.
        assert!(!err.to_string().contains(seed_b64), "{err}");
    }
}

#[test]
fn skey_round_trip_for_generated_keys() {
    for (name, b) in [
        ("a", 0u8),
        ("log.example/tenant-1", 0xff),
        ("\u{e9}t\u{e9}", 42),
    ] {
        let s = signer(name, b);
        let back = NoteSigner::parse(&s.to_skey_string()).unwrap();
        assert_eq!(back.name(), name);
        assert_eq!(back.key_id(), s.key_id());
        assert_eq!(back.verifier(), s.verifier());
        let vkey = s.verifier().to_vkey_string();
        assert_eq!(NoteVerifier::parse(&vkey).unwrap().to_vkey_string(), vkey);
    }
}

proptest! {
    #[test]
    fn sign_then_open_round_trips(
        seed in any::<[u8; 32]>(),
        name in "[a-z0-9./_-]{1,30}",
        lines in prop::collection::vec("[^\\x00-\\x1f]{0,40}", 0..6),
    ) {
        let s = NoteSigner::from_seed(&name, seed).unwrap();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect::<String>() + "end\n";
        let note = s.sign(&text).unwrap();
        let opened = open(&note, &[s.verifier()]).unwrap();
        prop_assert_eq!(opened.text, text);
        prop_assert_eq!(opened.verified_by, vec![(name, s.key_id())]);
    }
}

// ---------------------------------------------------------------- checkpoints

mod checkpoint {
    use super::*;
    use veritrail_core::checkpoint::{Checkpoint, CheckpointError};

    /// The example body from c2sp.org/tlog-checkpoint.
    const SPEC_BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn spec_example_round_trips() {
        let c = Checkpoint::parse(SPEC_BODY).unwrap();
        assert_eq!(c.origin(), "example.com/behind-the-sofa");
        assert_eq!(c.size(), 20_852_163);
        assert_eq!(
            BASE64.encode(c.root()),
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
        );
        assert!(c.extensions().is_empty());
        assert_eq!(c.to_body(), SPEC_BODY);
    }

    #[test]
    fn body_round_trip_with_extensions() {
        let c = Checkpoint::new("log.example/t1", 0, [0xab; 32])
            .unwrap()
            .with_extensions(["ext one", "\u{2014} looks like a signature"])
            .unwrap();
        let body = c.to_body();
        assert_eq!(
            body,
            format!(
                "log.example/t1\n0\n{}\next one\n\u{2014} looks like a signature\n",
                BASE64.encode([0xab; 32])
            )
        );
        assert_eq!(Checkpoint::parse(&body).unwrap(), c);
        assert_eq!(
            Checkpoint::new("o", u64::MAX, [0; 32]).unwrap().to_body(),
            format!("o\n18446744073709551615\n{}\n", BASE64.encode([0; 32]))
        );
    }

    #[test]
    fn constructor_rejections() {
        assert_eq!(
            Checkpoint::new("", 1, [0; 32]).unwrap_err(),
            CheckpointError::EmptyOrigin
        );
        for origin in ["a\nb", "a\rb", "a\tb"] {
            assert!(matches!(
                Checkpoint::new(origin, 1, [0; 32]).unwrap_err(),
                CheckpointError::InvalidLineCharacter { .. }
            ));
        }
        let c = Checkpoint::new("o", 1, [0; 32]).unwrap();
        assert_eq!(
            c.clone().with_extensions([""]).unwrap_err(),
            CheckpointError::EmptyExtension
        );
        assert!(matches!(
            c.with_extensions(["a\nb"]).unwrap_err(),
            CheckpointError::InvalidLineCharacter { .. }
        ));
    }

    #[test]
    fn parse_rejections() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let body = |size: &str, root: &str| format!("example.com/log\n{size}\n{root}\n");
        let invalid_size = |s: &str| CheckpointError::InvalidSize(s.to_owned());
        let cases: Vec<(String, CheckpointError)> = vec![
            (body("012", root), invalid_size("012")),
            (body("00", root), invalid_size("00")),
            (body("+12", root), invalid_size("+12")),
            (body("-1", root), invalid_size("-1")),
            (body(" 12", root), invalid_size(" 12")),
            (body("1_000", root), invalid_size("1_000")),
            (
                body("18446744073709551616", root),
                invalid_size("18446744073709551616"),
            ),
            (body("\u{661}", root), invalid_size("\u{661}")),
            (
                SPEC_BODY.strip_suffix('\n').unwrap().to_owned(),
                CheckpointError::MissingFinalNewline,
            ),
            (String::new(), CheckpointError::MissingFinalNewline),
            (
                body("1", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I"),
                CheckpointError::InvalidRootEncoding(
                    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I".into(),
                ),
            ),
            (
                body("1", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I!"),
                CheckpointError::InvalidRootEncoding(
                    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I!".into(),
                ),
            ),
            (
                // Non-zero trailing bits: a second encoding of another hash.
                body("1", "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J="),
                CheckpointError::InvalidRootEncoding(
                    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=".into(),
                ),
            ),
            (
                body("1", "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I="),
                CheckpointError::InvalidRootEncoding(
                    "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=".into(),
                ),
            ),
            (
                body("1", &BASE64.encode([0; 31])),
                CheckpointError::InvalidRootLength(31),
            ),
            (
                body("1", &BASE64.encode([0; 33])),
                CheckpointError::InvalidRootLength(33),
            ),
            (
                body("1", &BASE64.encode([0; 64])),
                CheckpointError::InvalidRootLength(64),
            ),
            (
                format!("\n1\n{root}\n"),
                CheckpointError::EmptyLine { line: 1 },
            ),
            (
                format!("o\n\n{root}\n"),
                CheckpointError::EmptyLine { line: 2 },
            ),
            (
                format!("{SPEC_BODY}\n"),
                CheckpointError::EmptyLine { line: 4 },
            ),
            (
                format!("{SPEC_BODY}ext\n\nmore\n"),
                CheckpointError::EmptyLine { line: 5 },
            ),
            (
                "o\n1\n".to_owned(),
                CheckpointError::TooFewLines { found: 2 },
            ),
            ("\n".to_owned(), CheckpointError::TooFewLines { found: 1 }),
            (
                format!("o\r\n1\n{root}\n"),
                CheckpointError::InvalidLineCharacter { what: "origin" },
            ),
            (
                format!("{SPEC_BODY}ext\r\n"),
                CheckpointError::InvalidLineCharacter {
                    what: "extension line",
                },
            ),
        ];
        for (body, expected) in &cases {
            assert_eq!(&Checkpoint::parse(body).unwrap_err(), expected, "{body:?}");
        }
    }

    #[test]
    fn full_flow_sign_open_parse() {
        let log = signer("log.example/tenant-7", 3);
        let cp = Checkpoint::new("log.example/tenant-7", 1234, [0x5a; 32]).unwrap();
        let note = log.sign(&cp.to_body()).unwrap();
        assert!(note.starts_with(&cp.to_body()));

        let opened = open(&note, &[log.verifier()]).unwrap();
        assert_eq!(
            opened.verified_by,
            vec![(cp.origin().to_owned(), log.key_id())]
        );
        assert_eq!(Checkpoint::parse(&opened.text).unwrap(), cp);

        // Tampering with the size breaks the signature.
        let forged = note.replacen("\n1234\n", "\n1235\n", 1);
        assert!(matches!(
            open(&forged, &[log.verifier()]).unwrap_err(),
            NoteError::InvalidSignature { .. }
        ));
    }

    fn line() -> impl Strategy<Value = String> {
        "[^\\x00-\\x1f]{1,40}"
    }

    proptest! {
        #[test]
        fn parse_inverts_to_body(
            origin in line(),
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            extensions in prop::collection::vec(line(), 0..4),
        ) {
            let c = Checkpoint::new(origin, size, root).unwrap().with_extensions(extensions).unwrap();
            let body = c.to_body();
            prop_assert_eq!(Checkpoint::parse(&body).unwrap(), c);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_canonical(body in "[0-9a-zA-Z+/=\\n ]{0,80}") {
            if let Ok(c) = Checkpoint::parse(&body) {
                prop_assert_eq!(c.to_body(), body);
            }
        }
    }
}
