//! Tests of `veritrail_core::merkle`.
//!
//! - Known answers: the RFC 6962 reference tree, the transparency-dev verification vectors
//!   (every case, accepted or rejected as the vector says), and a real Certificate Transparency
//!   log (Google Argon2020).
//! - Mutations: flipped bits, dropped, added and reordered proof hashes are rejected.
//! - Against an independent implementation (ct-merkle 0.3): roots, inclusion and consistency
//!   proofs byte for byte, for every pair in small trees and random samples in larger ones,
//!   including proofs for past tree sizes served from a store that has since grown.
//! - Costs: proof generation reads O(log n) nodes in one batch, and only complete ones.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly on a broken fixture or an unexpected error"
)]

use std::cell::Cell;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof};
use proptest::prelude::*;
use serde_json::Value;
use veritrail_core::merkle::{
    EMPTY_ROOT, Frontier, HASH_LEN, Hash, MemoryTree, MerkleError, MissingNode, NodeId, NodeReader,
    ProofError, VerifyError, consistency_proof, inclusion_proof, leaf_hash, node_hash, root_at,
    verify_consistency, verify_consistency_bytes, verify_inclusion, verify_inclusion_bytes,
};

/// The known-answer vectors vendored in `testdata/vectors` (sources and licences in
/// `testdata/README.md`).
fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/vectors"
    ))
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The independent implementation, fed the same leaf inputs.
type CtTree = MemoryBackedTree<sha2_011::Sha256, Vec<u8>>;

/// Leaf input `leaf_idx` of a test tree; `salt` makes trees of different cases differ.
fn leaf_input(salt: u64, leaf_idx: u64) -> Vec<u8> {
    [salt.to_le_bytes(), leaf_idx.to_le_bytes()].concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hash_from_base64(text: &str) -> Hash {
    BASE64.decode(text).unwrap().try_into().unwrap()
}

/// Flips bit `bit` (0..256) of `hash`.
fn flip_bit(hash: &Hash, bit: usize) -> Hash {
    let mut flipped = *hash;
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

/// Every JSON file under `dir`, sorted so failures are reproducible.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Serves a [`MemoryTree`]'s nodes the way a store holding only `tree_size` leaves would, and
/// counts what proof generation asks for. A node not complete in `tree_size` is an error: proof
/// generation must never ask for one (the [`NodeReader`] contract).
struct ScopedReader<'a> {
    tree: &'a MemoryTree,
    tree_size: u64,
    calls: Cell<usize>,
    nodes_read: Cell<usize>,
}

#[derive(Debug, thiserror::Error)]
enum ScopedReadError {
    /// Proof generation broke the contract.
    #[error("asked for {node:?}, not complete in a tree of {tree_size} leaves")]
    NotCompleteInScope { node: NodeId, tree_size: u64 },
    /// The test built a tree smaller than the scope.
    #[error(transparent)]
    Missing(MissingNode),
}

impl<'a> ScopedReader<'a> {
    fn new(tree: &'a MemoryTree, tree_size: u64) -> Self {
        assert!(tree_size <= tree.size(), "scope beyond the tree");
        Self {
            tree,
            tree_size,
            calls: Cell::new(0),
            nodes_read: Cell::new(0),
        }
    }
}

impl NodeReader for ScopedReader<'_> {
    type Error = ScopedReadError;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, ScopedReadError> {
        self.calls.set(self.calls.get() + 1);
        self.nodes_read.set(self.nodes_read.get() + ids.len());
        if let Some(&node) = ids.iter().find(|id| !id.is_complete_in(self.tree_size)) {
            return Err(ScopedReadError::NotCompleteInScope {
                node,
                tree_size: self.tree_size,
            });
        }
        self.tree.read_nodes(ids).map_err(ScopedReadError::Missing)
    }
}

fn ceil_log2(n: u64) -> usize {
    usize::try_from(u64::BITS - n.saturating_sub(1).leading_zeros()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Hashing and the RFC 6962 reference tree
// ---------------------------------------------------------------------------------------------

/// The eight leaf inputs of the RFC 6962 reference tree (CT's `merkle_tree_test`, also
/// transparency-dev's `testonly`), from which the transparency-dev vectors were generated.
const RFC6962_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// Roots of the reference tree at sizes 1..=8.
const RFC6962_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn rfc6962_tree() -> MemoryTree {
    RFC6962_LEAVES
        .iter()
        .map(|input| leaf_hash(input))
        .collect()
}

#[test]
fn hashing_known_answers() {
    assert_eq!(HASH_LEN, 32);
    assert_eq!(
        hex(&EMPTY_ROOT),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(MemoryTree::new().root(), EMPTY_ROOT);
    assert_eq!(Frontier::new().root(), EMPTY_ROOT);
    // Leaf and node hashes are domain-separated: the same bytes hash differently.
    let (left, right) = ([1; 32], [2; 32]);
    let mut as_leaf = left.to_vec();
    as_leaf.extend_from_slice(&right);
    assert_ne!(leaf_hash(&as_leaf), node_hash(&left, &right));
    assert_eq!(hex(&leaf_hash(b"")), RFC6962_ROOTS[0]);
}

#[test]
fn rfc6962_reference_tree_roots() {
    let mut tree = MemoryTree::new();
    for (n_leaves, (input, want_root)) in (1u64..).zip(RFC6962_LEAVES.iter().zip(RFC6962_ROOTS)) {
        tree.append(leaf_hash(input));
        assert_eq!(tree.size(), n_leaves);
        assert_eq!(hex(&tree.root()), want_root, "root of size {n_leaves}");
    }
    // Past roots from the stored nodes of the grown tree.
    for (n_leaves, want_root) in (1u64..).zip(RFC6962_ROOTS) {
        assert_eq!(hex(&root_at(&tree, n_leaves).unwrap()), want_root);
    }
    assert_eq!(root_at(&tree, 0).unwrap(), EMPTY_ROOT);
}

/// The accepted transparency-dev vectors were generated from the reference tree: our proof
/// generation must reproduce them byte for byte.
#[test]
fn generated_proofs_equal_transparency_dev_happy_paths() {
    let tree = rfc6962_tree();
    let mut n_checked = 0;
    for path in json_files(&vectors_dir().join("merkle/inclusion")) {
        let case = read_json(&path);
        if case["wantErr"] != false || case["desc"] != "happy path" {
            continue;
        }
        let leaf_idx = case["leafIdx"].as_u64().unwrap();
        let tree_size = case["treeSize"].as_u64().unwrap();
        let want = decode_proof(&case["proof"]).unwrap();
        assert_eq!(
            inclusion_proof(&tree, leaf_idx, tree_size).unwrap(),
            want,
            "{}",
            path.display()
        );
        assert_eq!(
            leaf_hash(RFC6962_LEAVES[usize::try_from(leaf_idx).unwrap()]),
            decode_hash(&case["leafHash"]).unwrap()
        );
        n_checked += 1;
    }
    for path in json_files(&vectors_dir().join("merkle/consistency")) {
        let case = read_json(&path);
        if case["wantErr"] != false || case["desc"] != "happy path" {
            continue;
        }
        let size1 = case["size1"].as_u64().unwrap();
        let size2 = case["size2"].as_u64().unwrap();
        let want = decode_proof(&case["proof"]).unwrap();
        assert_eq!(
            consistency_proof(&tree, size1, size2).unwrap(),
            want,
            "{}",
            path.display()
        );
        n_checked += 1;
    }
    assert_eq!(
        n_checked, 10,
        "five inclusion and five consistency happy paths"
    );
}

// ---------------------------------------------------------------------------------------------
// transparency-dev verification vectors
// ---------------------------------------------------------------------------------------------

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// A vector's field as a hash; `Err` when it is not base64 of exactly 32 bytes.
fn decode_hash(field: &Value) -> Result<Hash, String> {
    let text = field.as_str().ok_or("not a string")?;
    let bytes = BASE64.decode(text).map_err(|err| err.to_string())?;
    let n_bytes = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("{n_bytes} bytes, not {HASH_LEN}"))
}

/// A vector's proof; `null` is the empty proof (Go's nil slice).
fn decode_proof(field: &Value) -> Result<Vec<Hash>, String> {
    match field {
        Value::Null => Ok(Vec::new()),
        Value::Array(hashes) => hashes.iter().map(decode_hash).collect(),
        _ => Err("proof is neither null nor an array".to_owned()),
    }
}

fn decode_u64(field: &Value) -> Result<u64, String> {
    field.as_u64().ok_or_else(|| format!("not a u64: {field}"))
}

/// What happened to one vector.
#[derive(Debug)]
enum Outcome {
    Accepted,
    /// The case is not expressible with typed hashes; that counts as a rejection.
    Undecodable(String),
    Rejected(VerifyError),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted => f.write_str("accepted"),
            Self::Undecodable(why) => write!(f, "rejected as undecodable: {why}"),
            Self::Rejected(err) => write!(f, "rejected: {err}"),
        }
    }
}

impl Outcome {
    fn of(decoded: Result<Result<(), VerifyError>, String>) -> Self {
        match decoded {
            Err(why) => Self::Undecodable(why),
            Ok(Err(err)) => Self::Rejected(err),
            Ok(Ok(())) => Self::Accepted,
        }
    }

    fn accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }
}

/// Base64 only: hash lengths are the verifier's to check (`*_bytes` functions).
fn decode_bytes(field: &Value) -> Result<Vec<u8>, String> {
    let text = field.as_str().ok_or("not a string")?;
    BASE64.decode(text).map_err(|err| err.to_string())
}

fn decode_proof_bytes(field: &Value) -> Result<Vec<Vec<u8>>, String> {
    match field {
        Value::Null => Ok(Vec::new()),
        Value::Array(hashes) => hashes.iter().map(decode_bytes).collect(),
        _ => Err("proof is neither null nor an array".to_owned()),
    }
}

fn run_inclusion_vector(case: &Value) -> Outcome {
    Outcome::of((|| {
        let leaf_idx = decode_u64(&case["leafIdx"])?;
        let tree_size = decode_u64(&case["treeSize"])?;
        let root = decode_bytes(&case["root"])?;
        let leaf = decode_bytes(&case["leafHash"])?;
        let proof = decode_proof_bytes(&case["proof"])?;
        Ok(verify_inclusion_bytes(
            &leaf, leaf_idx, tree_size, &proof, &root,
        ))
    })())
}

fn run_consistency_vector(case: &Value) -> Outcome {
    Outcome::of((|| {
        let size1 = decode_u64(&case["size1"])?;
        let size2 = decode_u64(&case["size2"])?;
        let root1 = decode_bytes(&case["root1"])?;
        let root2 = decode_bytes(&case["root2"])?;
        let proof = decode_proof_bytes(&case["proof"])?;
        Ok(verify_consistency_bytes(
            size1, size2, &proof, &root1, &root2,
        ))
    })())
}

/// Runs every vector under `dir`; returns the cases whose outcome disagrees with `wantErr`, as
/// (path relative to the vectors, outcome), and how many cases were accepted.
fn disagreements(dir: &str, run: fn(&Value) -> Outcome) -> (Vec<(String, Outcome)>, usize) {
    let root = vectors_dir().join("merkle");
    let files = json_files(&root.join(dir));
    assert!(files.len() > 50, "too few vectors under {dir}: wrong path?");
    let mut disagree = Vec::new();
    let mut n_accepted = 0;
    for path in files {
        let case = read_json(&path);
        let want_accept = !case["wantErr"].as_bool().unwrap();
        let outcome = run(&case);
        n_accepted += usize::from(outcome.accepted());
        if outcome.accepted() != want_accept {
            let name = path.strip_prefix(&root).unwrap().display().to_string();
            disagree.push((name, outcome));
        }
    }
    (disagree, n_accepted)
}

fn describe(disagree: &[(String, Outcome)]) -> String {
    disagree
        .iter()
        .map(|(name, outcome)| format!("{name}: {outcome}\n"))
        .collect()
}

#[test]
fn transparency_dev_inclusion_vectors() {
    let (disagree, n_accepted) = disagreements("inclusion", run_inclusion_vector);
    assert!(disagree.is_empty(), "{}", describe(&disagree));
    assert_eq!(n_accepted, 6, "five happy paths and one single-entry tree");
}

/// Every case, through the byte-level verifier. One accepted case (`additional/
/// sizes-are-equal-one-and-proof-is-empty.json`) claims two equal *12-byte* roots of size-1
/// trees: with equal sizes the roots are compared as bytes, as upstream does.
#[test]
fn transparency_dev_consistency_vectors() {
    let (disagree, n_accepted) = disagreements("consistency", run_consistency_vector);
    assert!(disagree.is_empty(), "{}", describe(&disagree));
    assert_eq!(
        n_accepted, 6,
        "five happy paths and equal sizes with equal roots"
    );
}

#[test]
fn consistency_edge_cases() {
    let root = [7; 32];
    let other = [8; 32];
    // Equal sizes: empty proof and equal roots, nothing else.
    assert_eq!(verify_consistency(1, 1, &[], &root, &root), Ok(()));
    assert_eq!(verify_consistency(5, 5, &[], &root, &root), Ok(()));
    assert!(matches!(
        verify_consistency(5, 5, &[], &root, &other),
        Err(VerifyError::RootMismatch { tree_size: 5, .. })
    ));
    assert!(matches!(
        verify_consistency(5, 5, &[root], &root, &root),
        Err(VerifyError::WrongProofLength {
            expected: 0,
            actual: 1
        })
    ));
    // From the empty tree: nothing to prove, refused whatever the proof.
    for (size2, proof) in [(0, vec![]), (9, vec![]), (9, vec![EMPTY_ROOT])] {
        assert_eq!(
            verify_consistency(0, size2, &proof, &EMPTY_ROOT, &other),
            Err(VerifyError::FromEmptyTree { size2 })
        );
    }
    // Bytes from the wire: lengths are checked.
    assert!(matches!(
        verify_consistency_bytes(1, 2, &[[0u8; 31]], &root, &other),
        Err(VerifyError::BadHashLength { len: 31, .. })
    ));
    assert!(matches!(
        verify_inclusion_bytes(&[0; 32], 0, 1, &[] as &[&[u8]], &[0; 33]),
        Err(VerifyError::BadHashLength { len: 33, .. })
    ));
    // Backwards.
    assert_eq!(
        verify_consistency(3, 2, &[], &root, &other),
        Err(VerifyError::Size1GreaterThanSize2 { size1: 3, size2: 2 })
    );
    // Growing trees always need a proof.
    assert!(matches!(
        verify_consistency(1, 2, &[], &root, &other),
        Err(VerifyError::WrongProofLength { .. })
    ));
    // Error messages are readable.
    let err = verify_consistency(5, 5, &[], &root, &other).unwrap_err();
    assert!(err.to_string().contains(&hex(&root)), "{err}");
}

#[test]
fn inclusion_edge_cases() {
    let leaf = leaf_hash(b"only");
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
    assert_eq!(
        verify_inclusion(&leaf, 0, 0, &[], &EMPTY_ROOT),
        Err(VerifyError::IndexOutOfRange {
            leaf_idx: 0,
            tree_size: 0
        })
    );
    assert!(matches!(
        verify_inclusion(&leaf, u64::MAX, u64::MAX, &[], &leaf),
        Err(VerifyError::IndexOutOfRange { .. })
    ));
    // The largest index of the largest tree has a 64-hash proof; shorter ones are rejected
    // before any hashing.
    assert_eq!(
        verify_inclusion(&leaf, u64::MAX - 1, u64::MAX, &[], &leaf),
        Err(VerifyError::WrongProofLength {
            expected: 63,
            actual: 0
        })
    );
}

// ---------------------------------------------------------------------------------------------
// A real Certificate Transparency log: Google Argon2020
// ---------------------------------------------------------------------------------------------

const ARGON_TREE_SIZE: u64 = 961_984_013;
const ARGON_ROOT: &str = "dwlueapdd7LaOEnX2W2Wp9v2XE+KzejHRQGHwEx0oaM=";
const ARGON_OLD_SIZE: u64 = 3_654_490;
const ARGON_OLD_ROOT: &str = "AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=";

fn argon_file(name: &str) -> String {
    fs::read_to_string(vectors_dir().join("ct-argon2020").join(name)).unwrap()
}

fn hashes_field(json: &Value, field: &str) -> Vec<Hash> {
    json[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|hash| hash_from_base64(hash.as_str().unwrap()))
        .collect()
}

/// Leaf hash, index and inclusion proof of entry 10000.
fn argon_inclusion() -> (Hash, u64, Vec<Hash>) {
    let leaf_input = BASE64.decode(argon_file("entries.txt").trim()).unwrap();
    let proof_json: Value = serde_json::from_str(&argon_file("proof.json")).unwrap();
    let leaf_idx = proof_json["leaf_index"].as_u64().unwrap();
    assert_eq!(leaf_idx, 10_000);
    (
        leaf_hash(&leaf_input),
        leaf_idx,
        hashes_field(&proof_json, "audit_path"),
    )
}

fn argon_consistency() -> Vec<Hash> {
    let json: Value = serde_json::from_str(&argon_file("consistency.json")).unwrap();
    hashes_field(&json, "consistency")
}

#[test]
fn ct_argon2020_inclusion_verifies_and_mutations_fail() {
    let (leaf, leaf_idx, proof) = argon_inclusion();
    let root = hash_from_base64(ARGON_ROOT);
    assert_eq!(
        verify_inclusion(&leaf, leaf_idx, ARGON_TREE_SIZE, &proof, &root),
        Ok(())
    );
    assert_inclusion_mutations_rejected(&leaf, leaf_idx, ARGON_TREE_SIZE, &proof, &root);
}

#[test]
fn ct_argon2020_consistency_verifies_and_mutations_fail() {
    let proof = argon_consistency();
    let (root1, root2) = (
        hash_from_base64(ARGON_OLD_ROOT),
        hash_from_base64(ARGON_ROOT),
    );
    assert_eq!(
        verify_consistency(ARGON_OLD_SIZE, ARGON_TREE_SIZE, &proof, &root1, &root2),
        Ok(())
    );
    assert_consistency_mutations_rejected(ARGON_OLD_SIZE, ARGON_TREE_SIZE, &proof, &root1, &root2);
}

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

/// Every proof derived from a valid one by flipping a bit, dropping, duplicating, inserting or
/// swapping hashes.
fn mutated_proofs(proof: &[Hash]) -> Vec<(String, Vec<Hash>)> {
    let mut mutants = Vec::new();
    for at in 0..proof.len() {
        for bit in [0, 7, 100, 255] {
            let mut mutant = proof.to_vec();
            mutant[at] = flip_bit(&proof[at], bit);
            mutants.push((format!("bit {bit} of hash {at} flipped"), mutant));
        }
        let mut dropped = proof.to_vec();
        dropped.remove(at);
        mutants.push((format!("hash {at} dropped"), dropped));
        let mut duplicated = proof.to_vec();
        duplicated.insert(at, proof[at]);
        mutants.push((format!("hash {at} duplicated"), duplicated));
        if at + 1 < proof.len() && proof[at] != proof[at + 1] {
            let mut swapped = proof.to_vec();
            swapped.swap(at, at + 1);
            mutants.push((format!("hashes {at} and {} swapped", at + 1), swapped));
        }
    }
    for at in [0, proof.len()] {
        let mut inserted = proof.to_vec();
        inserted.insert(at, [0; 32]);
        mutants.push((format!("zero hash inserted at {at}"), inserted));
    }
    mutants
}

fn assert_inclusion_mutations_rejected(
    leaf: &Hash,
    leaf_idx: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) {
    for (what, mutant) in mutated_proofs(proof) {
        assert!(
            verify_inclusion(leaf, leaf_idx, tree_size, &mutant, root).is_err(),
            "inclusion of {leaf_idx} in {tree_size} accepted with {what}"
        );
    }
    let flipped_leaf = flip_bit(leaf, 3);
    let flipped_root = flip_bit(root, 3);
    assert!(verify_inclusion(&flipped_leaf, leaf_idx, tree_size, proof, root).is_err());
    assert!(verify_inclusion(leaf, leaf_idx, tree_size, proof, &flipped_root).is_err());
    assert!(verify_inclusion(leaf, leaf_idx ^ 1, tree_size, proof, root).is_err());
}

fn assert_consistency_mutations_rejected(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) {
    for (what, mutant) in mutated_proofs(proof) {
        assert!(
            verify_consistency(size1, size2, &mutant, root1, root2).is_err(),
            "consistency {size1} -> {size2} accepted with {what}"
        );
    }
    assert!(verify_consistency(size1, size2, proof, &flip_bit(root1, 9), root2).is_err());
    assert!(verify_consistency(size1, size2, proof, root1, &flip_bit(root2, 9)).is_err());
    if root1 != root2 {
        assert!(verify_consistency(size1, size2, proof, root2, root1).is_err());
    }
}

#[test]
fn mutated_generated_proofs_are_rejected() {
    let n_leaves = 300;
    let tree: MemoryTree = (0..n_leaves)
        .map(|i| leaf_hash(&leaf_input(1, i)))
        .collect();
    for tree_size in [1, 2, 3, 7, 8, 9, 100, 255, 256, 257, 300] {
        let root = root_at(&tree, tree_size).unwrap();
        for leaf_idx in [0, 1, tree_size / 2, tree_size - 1].map(|idx| idx.min(tree_size - 1)) {
            let proof = inclusion_proof(&tree, leaf_idx, tree_size).unwrap();
            let leaf = leaf_hash(&leaf_input(1, leaf_idx));
            assert_eq!(
                verify_inclusion(&leaf, leaf_idx, tree_size, &proof, &root),
                Ok(())
            );
            assert_inclusion_mutations_rejected(&leaf, leaf_idx, tree_size, &proof, &root);
        }
        for size1 in [1, 2, 3, 5, 8, 64, 99, 128, 299] {
            if size1 >= tree_size {
                continue;
            }
            let root1 = root_at(&tree, size1).unwrap();
            let proof = consistency_proof(&tree, size1, tree_size).unwrap();
            assert_eq!(
                verify_consistency(size1, tree_size, &proof, &root1, &root),
                Ok(())
            );
            assert_consistency_mutations_rejected(size1, tree_size, &proof, &root1, &root);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frontier, proof generation errors, read costs
// ---------------------------------------------------------------------------------------------

#[test]
fn append_reports_completed_nodes_bottom_up() {
    let mut frontier = Frontier::new();
    let mut reported = Vec::new();
    for i in 0..4 {
        frontier.append(leaf_hash(&[i]), |id, _| reported.push((id.level, id.index)));
    }
    assert_eq!(
        reported,
        [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0)]
    );
    assert_eq!(frontier.size(), 4);
    assert_eq!(frontier.hashes().len(), 1);
    assert_eq!(Frontier::node_ids(4), [NodeId::new(2, 0)]);
    assert_eq!(
        Frontier::node_ids(13),
        [NodeId::new(3, 0), NodeId::new(2, 2), NodeId::new(0, 12)]
    );
    assert_eq!(Frontier::node_ids(0), []);
    assert_eq!(Frontier::node_ids(u64::MAX).len(), 64);
}

#[test]
fn frontier_from_parts_checks_length_and_resumes_appending() {
    assert_eq!(
        Frontier::from_parts(13, vec![[0; 32]; 2]),
        Err(MerkleError::FrontierLength {
            size: 13,
            expected: 3,
            actual: 2
        })
    );
    assert_eq!(Frontier::from_parts(0, Vec::new()), Ok(Frontier::new()));

    // A store reloads the frontier of a past size and keeps appending: same tree.
    let leaves: Vec<Hash> = (0..100).map(|i| leaf_hash(&leaf_input(2, i))).collect();
    let full: MemoryTree = leaves.iter().copied().collect();
    for reload_at in [0, 1, 13, 64, 99] {
        let stored = full.read_nodes(&Frontier::node_ids(reload_at)).unwrap();
        let mut frontier = Frontier::from_parts(reload_at, stored).unwrap();
        let mut reported = Vec::new();
        for &leaf in &leaves[usize::try_from(reload_at).unwrap()..] {
            frontier.append(leaf, |id, hash| reported.push((id, hash)));
        }
        assert_eq!(frontier.root(), full.root(), "reloaded at {reload_at}");
        assert_eq!(&frontier, full.frontier());
        // What the reloaded frontier reports is what the full tree stored.
        for (id, hash) in reported {
            assert_eq!(full.node(id), Some(&hash), "{id:?}");
        }
    }
}

#[test]
fn proof_generation_argument_errors() {
    let tree: MemoryTree = (0..10).map(|i| leaf_hash(&[i])).collect();
    assert!(matches!(
        inclusion_proof(&tree, 10, 10),
        Err(ProofError::LeafIndexOutOfRange {
            leaf_idx: 10,
            tree_size: 10
        })
    ));
    assert!(matches!(
        inclusion_proof(&tree, 0, 0),
        Err(ProofError::LeafIndexOutOfRange { .. })
    ));
    assert!(matches!(
        consistency_proof(&tree, 4, 3),
        Err(ProofError::Size1GreaterThanSize2 { size1: 4, size2: 3 })
    ));
    assert_eq!(consistency_proof(&tree, 0, 10).unwrap(), Vec::<Hash>::new());
    assert_eq!(
        consistency_proof(&tree, 10, 10).unwrap(),
        Vec::<Hash>::new()
    );
    // Beyond what the reader holds: a read error, not a panic or a made-up hash.
    let err = inclusion_proof(&tree, 3, 11).unwrap_err();
    assert!(
        matches!(err, ProofError::Read(MissingNode { .. })),
        "{err:?}"
    );
    assert!(matches!(root_at(&tree, 12), Err(ProofError::Read(_))));
    let err = consistency_proof(&tree, 3, 16).unwrap_err();
    assert_eq!(err.to_string(), "reading stored node hashes");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn misbehaving_reader_is_an_error() {
    struct ShortReader;
    impl NodeReader for ShortReader {
        type Error = std::convert::Infallible;
        fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
            Ok(vec![[0; 32]; ids.len().saturating_sub(1)])
        }
    }
    assert!(matches!(
        inclusion_proof(&ShortReader, 5, 100),
        Err(ProofError::ReadCountMismatch { .. })
    ));
}

/// Proof generation is O(log n) reads in one batch, on a tree of about a million leaves.
#[test]
fn proof_generation_reads_log_n_nodes() {
    let n_leaves: u64 = 1_000_037;
    let tree: MemoryTree = (0..n_leaves).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let root = tree.root();
    let max_reads = 2 * ceil_log2(n_leaves);
    let mut worst = 0;
    for leaf_idx in [
        0,
        1,
        12_345,
        524_287,
        524_288,
        999_999,
        n_leaves - 2,
        n_leaves - 1,
    ] {
        let reader = ScopedReader::new(&tree, n_leaves);
        let proof = inclusion_proof(&reader, leaf_idx, n_leaves).unwrap();
        assert_eq!(reader.calls.get(), 1);
        assert!(reader.nodes_read.get() <= max_reads, "{leaf_idx}");
        worst = worst.max(reader.nodes_read.get());
        let leaf = leaf_hash(&leaf_idx.to_le_bytes());
        assert_eq!(
            verify_inclusion(&leaf, leaf_idx, n_leaves, &proof, &root),
            Ok(())
        );
    }
    // The last leaf's sibling path crosses the incomplete right edge: that is where reads
    // exceed the proof length.
    assert!(
        worst > ceil_log2(n_leaves),
        "ephemeral nodes were exercised"
    );
    for size1 in [1, 3, 1 << 19, 777_777, n_leaves - 1] {
        let reader = ScopedReader::new(&tree, n_leaves);
        let proof = consistency_proof(&reader, size1, n_leaves).unwrap();
        assert_eq!(reader.calls.get(), 1);
        assert!(reader.nodes_read.get() <= max_reads + 1, "{size1}");
        let root1 = root_at(&tree, size1).unwrap();
        assert_eq!(
            verify_consistency(size1, n_leaves, &proof, &root1, &root),
            Ok(())
        );
    }
    let reader = ScopedReader::new(&tree, n_leaves);
    assert_eq!(root_at(&reader, n_leaves).unwrap(), root);
    assert_eq!(reader.nodes_read.get(), n_leaves.count_ones() as usize);
}

// ---------------------------------------------------------------------------------------------
// Against ct-merkle
// ---------------------------------------------------------------------------------------------

/// Our proofs for `(leaf_idx, size)` and `(size1, size)`, read from `tree` scoped to `size`,
/// equal ct-merkle's (`ct` holds exactly `size` leaves) byte for byte and verify with both
/// verifiers.
fn assert_matches_ct(tree: &MemoryTree, ct: &CtTree, salt: u64, leaf_idx: u64, size1: u64) {
    let size = ct.len();
    let ct_root = ct.root();
    let reader = ScopedReader::new(tree, size);
    let root = root_at(&reader, size).unwrap();
    assert_eq!(&root[..], ct_root.as_bytes().as_slice(), "root of {size}");

    let proof = inclusion_proof(&reader, leaf_idx, size).unwrap();
    let ct_proof = ct.prove_inclusion(usize::try_from(leaf_idx).unwrap());
    assert_eq!(
        proof.as_flattened(),
        ct_proof.as_bytes(),
        "inclusion of {leaf_idx} in {size}"
    );
    let leaf = leaf_hash(&leaf_input(salt, leaf_idx));
    assert_eq!(
        verify_inclusion(&leaf, leaf_idx, size, &proof, &root),
        Ok(())
    );
    let ours_for_ct = InclusionProof::<sha2_011::Sha256>::from_bytes(proof.as_flattened().to_vec());
    ct_root
        .verify_inclusion(&leaf_input(salt, leaf_idx), leaf_idx, &ours_for_ct)
        .unwrap();

    let proof = consistency_proof(&reader, size1, size).unwrap();
    let root1 = root_at(&reader, size1).unwrap();
    if size1 == 0 {
        // Neither we nor ct-merkle prove consistency with the empty tree.
        assert!(proof.is_empty());
        assert_eq!(
            verify_consistency(size1, size, &proof, &root1, &root),
            Err(VerifyError::FromEmptyTree { size2: size })
        );
        return;
    }
    assert_eq!(
        verify_consistency(size1, size, &proof, &root1, &root),
        Ok(())
    );
    let ct_proof = ct.prove_consistency(usize::try_from(size - size1).unwrap());
    assert_eq!(
        proof.as_flattened(),
        ct_proof.as_bytes(),
        "consistency {size1} -> {size}"
    );
    let ours_for_ct =
        ConsistencyProof::<sha2_011::Sha256>::try_from_bytes(proof.as_flattened().to_vec())
            .unwrap();
    let ct_root1 = ct_merkle::RootHash::<sha2_011::Sha256>::new(root1.into(), size1);
    ct_root.verify_consistency(&ct_root1, &ours_for_ct).unwrap();
}

/// Every leaf index and every old size, for every tree of up to 70 leaves.
#[test]
fn small_trees_match_ct_merkle_exhaustively() {
    let salt = 3;
    let max_leaves = 70;
    let tree: MemoryTree = (0..max_leaves)
        .map(|i| leaf_hash(&leaf_input(salt, i)))
        .collect();
    let mut ct = CtTree::new();
    for size in 1..=max_leaves {
        ct.push(leaf_input(salt, size - 1));
        for pick in 0..=size {
            assert_matches_ct(&tree, &ct, salt, pick.min(size - 1), pick);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random trees of up to a few thousand leaves, checked at random past sizes while the tree
    /// keeps growing: roots, proofs and frontiers agree with ct-merkle.
    #[test]
    fn random_trees_match_ct_merkle(
        n_leaves in 1u64..=2500,
        salt in any::<u64>(),
        picks in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u64>()), 1..8),
    ) {
        let mut checkpoints: Vec<(u64, u64, u64)> = picks
            .iter()
            .map(|&(size, leaf, old)| {
                let size = 1 + size % n_leaves;
                (size, leaf % size, old % (size + 1))
            })
            .collect();
        checkpoints.push((n_leaves, n_leaves - 1, n_leaves / 2));
        checkpoints.sort_unstable();

        let mut tree = MemoryTree::new();
        let mut ct = CtTree::new();
        let mut frontier = Frontier::new();
        let mut ct_at_checkpoints = Vec::new();
        let mut next = 0;
        for leaf_idx in 0..n_leaves {
            let input = leaf_input(salt, leaf_idx);
            tree.append(leaf_hash(&input));
            frontier.append(leaf_hash(&input), |_, _| {});
            ct.push(input);
            // (a) every prefix root agrees.
            let ct_root = ct.root();
            prop_assert_eq!(&tree.root()[..], ct_root.as_bytes().as_slice());
            while next < checkpoints.len() && checkpoints[next].0 == leaf_idx + 1 {
                ct_at_checkpoints.push((checkpoints[next], ct.clone(), frontier.clone()));
                next += 1;
            }
        }
        prop_assert_eq!(frontier.root(), tree.root());

        // The tree has grown past every checkpoint: its proofs for past sizes must still match.
        for ((size, leaf_idx, size1), ct_then, frontier_then) in ct_at_checkpoints {
            prop_assert_eq!(ct_then.len(), size);
            // (b), (c)
            assert_matches_ct(&tree, &ct_then, salt, leaf_idx, size1);
            // (d) a frontier rebuilt from stored nodes equals the one built by appending.
            let stored = tree.read_nodes(&Frontier::node_ids(size)).unwrap();
            let rebuilt = Frontier::from_parts(size, stored).unwrap();
            prop_assert_eq!(rebuilt.root(), root_at(&tree, size).unwrap());
            prop_assert_eq!(&rebuilt, &frontier_then);
        }
    }
}
