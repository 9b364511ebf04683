//! RFC 6962 / RFC 9162 Merkle tree math for veritrail's per-tenant logs.
//!
//! What lives here, and what it promises:
//!
//! - Hashing: [`leaf_hash`], [`node_hash`] and [`EMPTY_ROOT`], with the RFC 6962 domain
//!   separation (`0x00` for leaves, `0x01` for interior nodes).
//! - Appending: a [`Frontier`] is the right edge of a tree, enough to append a leaf and to compute
//!   the root in O(log n). Every append reports the nodes it completed, so a store can persist
//!   them; those nodes are exactly what proof generation later reads.
//! - Proving: [`inclusion_proof`], [`consistency_proof`] and [`root_at`] read O(log n) stored
//!   nodes through a [`NodeReader`], in one batch, and never rebuild the tree. Nodes on the right
//!   edge of a tree size that are not complete ("ephemeral") are hashed up from complete ones.
//! - Verifying: [`verify_inclusion`] and [`verify_consistency`] (RFC 9162 2.1.3.2 and 2.1.4.2),
//!   strict about proof length.
//! - [`MemoryTree`]: a Vec-backed tree holding every complete node; a [`NodeReader`] for tests
//!   and for the in-memory store.
//!
//! # Node addressing
//!
//! A [`NodeId`] `(level, index)` names the perfect subtree over leaves
//! `[index << level, (index + 1) << level)`. Only *complete* nodes (whose leaves all exist) are
//! ever stored, so the set of stored nodes of a tree never changes once written: appending only
//! adds nodes. That is what lets one store serve proofs for every past tree size.
//!
//! Nothing here does I/O; readers are supplied by the caller.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 output: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Length in bytes of a [`Hash`](type@Hash).
pub const HASH_LEN: usize = 32;

/// SHA-256 of the empty string: the root of the empty tree (RFC 9162 2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Domain-separation prefix of leaf hashes (RFC 6962 2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix of interior node hashes (RFC 6962 2.1).
const NODE_PREFIX: u8 = 0x01;

/// The hash of one leaf: `SHA-256(0x00 || leaf_input)`.
#[must_use]
pub fn leaf_hash(leaf_input: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(leaf_input)
        .finalize()
        .into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([NODE_PREFIX])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// A node of the tree that covers a complete (perfect) subtree: the hash of leaves
/// `[index << level, (index + 1) << level)`. Level 0 nodes are leaf hashes.
///
/// The derived order sorts by level, then index, which groups a store's keys by level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves: the node covers `2^level` leaves. Always below 64.
    pub level: u8,
    /// Position among the nodes of the same level, counted from the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `level` and `index`.
    #[must_use]
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// Whether all leaves of this node exist in a tree of `tree_size` leaves, i.e. whether its
    /// hash is final and may be stored or read.
    #[must_use]
    pub const fn is_complete_in(self, tree_size: u64) -> bool {
        // (index + 1) << level <= tree_size, written so it cannot overflow.
        self.index < tree_size >> self.level
    }
}

/// Where stored hashes of *complete* subtrees come from (a store, or memory).
///
/// Contract: proof generation only ever asks for nodes that are complete within the tree size
/// being proved, so any reader holding every node reported by [`Frontier::append`] up to that
/// size can answer. A reader must return one hash per id, in the order of `ids`; a reader that
/// does not have a node must return an error rather than a made-up hash.
pub trait NodeReader {
    /// Why a read failed (a missing node, a storage error, ...).
    type Error;

    /// The hashes of `ids`, in the same order.
    ///
    /// # Errors
    ///
    /// When a node is missing or the underlying storage fails.
    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

impl<R: NodeReader + ?Sized> NodeReader for &R {
    type Error = R::Error;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        (**self).read_nodes(ids)
    }
}

/// A frontier could not be rebuilt from stored parts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    /// A frontier of `size` leaves has one hash per set bit of `size`.
    #[error("a frontier of {size} leaves has {expected} hashes, got {actual}")]
    FrontierLength {
        /// The tree size the frontier was rebuilt for.
        size: u64,
        /// `size.count_ones()`.
        expected: usize,
        /// How many hashes were supplied.
        actual: usize,
    },
}

/// Proof generation failed: bad arguments, or the [`NodeReader`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E> {
    /// The leaf to prove is not in the tree.
    #[error("leaf index {leaf_idx} is outside a tree of {tree_size} leaves")]
    LeafIndexOutOfRange {
        /// The requested leaf.
        leaf_idx: u64,
        /// The tree size the proof was requested for.
        tree_size: u64,
    },
    /// A consistency proof goes from a smaller tree to a larger one.
    #[error("consistency proof requested from tree size {size1} to smaller tree size {size2}")]
    Size1GreaterThanSize2 {
        /// The old tree size.
        size1: u64,
        /// The new tree size.
        size2: u64,
    },
    /// The reader broke its contract and returned the wrong number of hashes.
    #[error("node reader returned {returned} hashes for {requested} node ids")]
    ReadCountMismatch {
        /// How many ids were asked for.
        requested: usize,
        /// How many hashes came back.
        returned: usize,
    },
    /// The reader failed (missing node, storage error).
    #[error("reading stored node hashes")]
    Read(#[source] E),
}

/// A proof did not verify. Every variant means "reject"; they differ only to help debugging.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The leaf index is not below the tree size (this includes every index in an empty tree).
    #[error("leaf index {leaf_idx} is outside a tree of {tree_size} leaves")]
    IndexOutOfRange {
        /// The claimed leaf index.
        leaf_idx: u64,
        /// The claimed tree size.
        tree_size: u64,
    },
    /// The proof has the wrong number of hashes for the claimed index and sizes.
    #[error("proof has {actual} hashes, expected exactly {expected}")]
    WrongProofLength {
        /// The length the sizes call for.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// Hashing the proof up gave a different root than the one claimed for `tree_size`.
    #[error(
        "root computed from the proof for tree size {tree_size} is {}, expected {}",
        Hex(computed),
        Hex(expected)
    )]
    RootMismatch {
        /// The tree size whose root did not match (for consistency: `size1` or `size2`).
        tree_size: u64,
        /// The root the proof hashes up to.
        computed: Hash,
        /// The root the caller claimed.
        expected: Hash,
    },
    /// Consistency can only be proved from a smaller (or equal) tree to a larger one.
    #[error("consistency from tree size {size1} to smaller tree size {size2}")]
    Size1GreaterThanSize2 {
        /// The old tree size.
        size1: u64,
        /// The new tree size.
        size2: u64,
    },
    /// Every tree extends the empty one, so a consistency proof from size 0 proves nothing;
    /// it is refused rather than accepted without a check (as transparency-dev does).
    #[error("a consistency proof from the empty tree (to size {size2}) proves nothing")]
    FromEmptyTree {
        /// The new tree size.
        size2: u64,
    },
    /// A hash given as bytes (a root, leaf or proof element) is not 32 bytes long.
    #[error("{what} is {len} bytes long, not 32")]
    BadHashLength {
        /// Which hash: "root", "leaf hash", "proof element 3", ...
        what: String,
        /// Its length.
        len: usize,
    },
}

/// Formats a hash as lowercase hex in error messages.
struct Hex<'a>(&'a Hash);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// The right edge of a tree being appended to: the roots of its perfect subtrees, largest first
/// (one per set bit of `size`). Enough to append and to compute the root.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    /// Number of leaves in the tree.
    size: u64,
    /// Invariant: `hashes.len() == size.count_ones()`, and `hashes[i]` is the hash of
    /// `Frontier::node_ids(size)[i]`.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves in the tree.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ids of the nodes a frontier of this size consists of (largest first), so a store can load
    /// it. All of them are complete in a tree of `size` leaves.
    #[must_use]
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        perfect_subtrees(0, size).collect()
    }

    /// Rebuilds a frontier from the stored hashes of [`Frontier::node_ids`]`(size)`, in that order.
    ///
    /// # Errors
    ///
    /// [`MerkleError::FrontierLength`] when `hashes` does not have one hash per id.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, MerkleError> {
        let expected = n_perfect_subtrees(size);
        if hashes.len() != expected {
            return Err(MerkleError::FrontierLength {
                size,
                expected,
                actual: hashes.len(),
            });
        }
        Ok(Self { size, hashes })
    }

    /// The hashes of [`Frontier::node_ids`]`(self.size())`, largest subtree first.
    #[must_use]
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf hash. Calls `on_complete(node_id, hash)` for every node that becomes
    /// complete: the leaf itself (level 0) first, then each newly completed parent, bottom up.
    /// Those are exactly the nodes a [`NodeReader`] must later serve; persisting them in order
    /// keeps a store able to prove every tree size reached so far.
    ///
    /// # Panics
    ///
    /// If the tree already holds `u64::MAX` leaves.
    pub fn append(&mut self, leaf: Hash, mut on_complete: impl FnMut(NodeId, Hash)) {
        let leaf_idx = self.size;
        let new_size = leaf_idx
            .checked_add(1)
            .expect("a tree holds at most u64::MAX leaves");
        on_complete(NodeId::new(0, leaf_idx), leaf);

        // Each trailing one bit of the old size is a perfect subtree of the same height as the
        // node being carried, sitting just left of it: merge them, smallest first.
        let mut carried = leaf;
        let n_merges = leaf_idx.trailing_ones();
        for level in 1..=n_merges {
            let left = self
                .hashes
                .pop()
                .expect("frontier invariant: one hash per set bit of size");
            carried = node_hash(&left, &carried);
            // The new node ends at leaf `leaf_idx`, whose low `level` bits are all ones.
            on_complete(NodeId::new(level_u8(level), leaf_idx >> level), carried);
        }
        self.hashes.push(carried);
        self.size = new_size;
    }

    /// Root of the current tree ([`EMPTY_ROOT`] when empty). O(log n).
    #[must_use]
    pub fn root(&self) -> Hash {
        fold_right_edge(&self.hashes)
    }
}

/// Proof generation: reads the inclusion proof of leaf `leaf_idx` in the tree of `tree_size`
/// leaves (RFC 9162 2.1.3.1 `PATH`), ordered from the leaf up.
///
/// One batched read of O(log n) nodes, never a rebuild of the tree. A proof node that is not
/// complete in `tree_size` (at most one, on the right edge) is hashed up from complete nodes read
/// in the same call. The reader may hold more nodes (a larger tree): proofs for past sizes work.
///
/// # Errors
///
/// [`ProofError::LeafIndexOutOfRange`] when `leaf_idx >= tree_size`; [`ProofError::Read`] when
/// the reader fails (for instance because it holds fewer than `tree_size` leaves).
pub fn inclusion_proof<R: NodeReader>(
    reader: &R,
    leaf_idx: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if leaf_idx >= tree_size {
        return Err(ProofError::LeafIndexOutOfRange {
            leaf_idx,
            tree_size,
        });
    }
    let mut plan = ReadPlan::default();
    plan.push_path(NodeId::new(0, leaf_idx), tree_size);
    plan.execute(reader)
}

/// Proof generation: reads the consistency proof from the tree of `size1` leaves to the tree of
/// `size2` leaves (RFC 9162 2.1.4.1 `PROOF`). One batched read of O(log n) nodes.
///
/// When `size1 == size2` or `size1 == 0` the proof is empty, without any read: equal trees need
/// no proof, and [`verify_consistency`] accepts an empty proof from the empty tree.
///
/// # Errors
///
/// [`ProofError::Size1GreaterThanSize2`] when `size1 > size2`; [`ProofError::Read`] when the
/// reader fails.
pub fn consistency_proof<R: NodeReader>(
    reader: &R,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProofError<R::Error>> {
    if size1 > size2 {
        return Err(ProofError::Size1GreaterThanSize2 { size1, size2 });
    }
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    // Both trees contain the old tree's smallest perfect subtree (the "seed") unchanged, and the
    // seed's path up the new tree passes every other part of the old tree as a left sibling: one
    // path proves both roots. The proof is the seed, then that path; the seed is left out when
    // size1 is a power of two, because then it is the whole old tree, which the verifier knows
    // as root1.
    let seed = smallest_perfect_subtree(size1);
    let mut plan = ReadPlan::default();
    if seed.index != 0 {
        plan.push_node(seed);
    }
    plan.push_path(seed, size2);
    plan.execute(reader)
}

/// Root of the tree of `tree_size` leaves from stored nodes: one batched read of
/// `tree_size.count_ones()` nodes (the frontier of that size). [`EMPTY_ROOT`] for size 0.
///
/// # Errors
///
/// [`ProofError::Read`] when the reader fails.
pub fn root_at<R: NodeReader>(reader: &R, tree_size: u64) -> Result<Hash, ProofError<R::Error>> {
    if tree_size == 0 {
        return Ok(EMPTY_ROOT);
    }
    let mut plan = ReadPlan::default();
    plan.push_range(0, tree_size);
    let mut hashes = plan.execute(reader)?;
    // One range in the plan, hence one output.
    Ok(hashes.pop().unwrap_or(EMPTY_ROOT))
}

/// Verifies that `leaf` (a leaf *hash*) is at `leaf_idx` in the tree of `tree_size` leaves whose
/// root is `root` (RFC 9162 2.1.3.2), strictly: the proof must have exactly the length the index
/// and size call for.
///
/// # Errors
///
/// [`VerifyError::IndexOutOfRange`], [`VerifyError::WrongProofLength`] or
/// [`VerifyError::RootMismatch`].
pub fn verify_inclusion(
    leaf: &Hash,
    leaf_idx: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if leaf_idx >= tree_size {
        return Err(VerifyError::IndexOutOfRange {
            leaf_idx,
            tree_size,
        });
    }
    let shape = PathShape::new(leaf_idx, tree_size - 1);
    check_proof_len(shape.len(), proof.len())?;
    let (inner, border) = proof.split_at(shape.n_inner());
    let computed = chain_border(chain_inner(*leaf, inner, leaf_idx), border);
    check_root(tree_size, computed, root)
}

/// Verifies that the tree of `size1` leaves with root `root1` is a prefix of the tree of `size2`
/// leaves with root `root2` (RFC 9162 2.1.4.2), strictly: exact proof length.
///
/// Edge cases, as in the transparency-dev test vectors:
/// - `size1 == 0`: refused ([`VerifyError::FromEmptyTree`]); there is nothing to prove;
/// - `size1 == size2`: the proof must be empty and the roots equal.
///
/// # Errors
///
/// [`VerifyError::Size1GreaterThanSize2`], [`VerifyError::FromEmptyTree`],
/// [`VerifyError::WrongProofLength`] or [`VerifyError::RootMismatch`].
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), VerifyError> {
    if size1 > size2 {
        return Err(VerifyError::Size1GreaterThanSize2 { size1, size2 });
    }
    if size1 == 0 {
        return Err(VerifyError::FromEmptyTree { size2 });
    }
    if size1 == size2 {
        check_proof_len(0, proof.len())?;
        return check_root(size2, *root1, root2);
    }

    // Now 0 < size1 < size2. The proof is the inclusion path, in the new tree, of the old tree's
    // smallest perfect subtree (the "seed"), preceded by the seed itself unless the seed is the
    // whole old tree (size1 a power of two), in which case the seed is root1.
    let seed_id = smallest_perfect_subtree(size1);
    let shape = PathShape::new(seed_id.index, (size2 - 1) >> seed_id.level);
    let seed_in_proof = seed_id.index != 0;
    check_proof_len(shape.len() + usize::from(seed_in_proof), proof.len())?;
    let (seed, path) = match proof.split_first() {
        Some((seed, path)) if seed_in_proof => (*seed, path),
        _ => (*root1, proof),
    };
    let (inner, border) = path.split_at(shape.n_inner());

    // The old root hashes the seed only with its *left* siblings (those inside the old tree);
    // the new root hashes it with every sibling. Both share the border.
    let old_root = chain_border(chain_inner_left_only(seed, inner, seed_id.index), border);
    check_root(size1, old_root, root1)?;
    let new_root = chain_border(chain_inner(seed, inner, seed_id.index), border);
    check_root(size2, new_root, root2)
}

/// [`verify_inclusion`] on hashes given as bytes, as they arrive from the wire: any hash
/// that is not 32 bytes is refused with [`VerifyError::BadHashLength`].
///
/// # Errors
///
/// As [`verify_inclusion`], and [`VerifyError::BadHashLength`].
pub fn verify_inclusion_bytes<P: AsRef<[u8]>>(
    leaf: &[u8],
    leaf_idx: u64,
    tree_size: u64,
    proof: &[P],
    root: &[u8],
) -> Result<(), VerifyError> {
    verify_inclusion(
        &hash_from_bytes(leaf, "leaf hash")?,
        leaf_idx,
        tree_size,
        &proof_from_bytes(proof)?,
        &hash_from_bytes(root, "root")?,
    )
}

/// [`verify_consistency`] on hashes given as bytes. When the sizes are equal the two roots
/// only need to be the same bytes (there is no hashing to do), as in transparency-dev.
///
/// # Errors
///
/// As [`verify_consistency`], and [`VerifyError::BadHashLength`].
pub fn verify_consistency_bytes<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), VerifyError> {
    if size1 != 0 && size1 == size2 {
        check_proof_len(0, proof.len())?;
        if root1 == root2 {
            return Ok(());
        }
    }
    verify_consistency(
        size1,
        size2,
        &proof_from_bytes(proof)?,
        &hash_from_bytes(root1, "first root")?,
        &hash_from_bytes(root2, "second root")?,
    )
}

fn hash_from_bytes(bytes: &[u8], what: &str) -> Result<Hash, VerifyError> {
    bytes.try_into().map_err(|_| VerifyError::BadHashLength {
        what: what.to_owned(),
        len: bytes.len(),
    })
}

fn proof_from_bytes<P: AsRef<[u8]>>(proof: &[P]) -> Result<Vec<Hash>, VerifyError> {
    proof
        .iter()
        .enumerate()
        .map(|(idx, element)| hash_from_bytes(element.as_ref(), &format!("proof element {idx}")))
        .collect()
}

/// A Vec-backed tree that stores every complete node: level `l` holds the hashes of nodes
/// `0..(size >> l)`. Implements [`NodeReader`] for every size up to its own, so it serves
/// proofs and roots for all past tree sizes. Used by tests and by the in-memory store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryTree {
    /// The right edge, for O(log n) appends and roots.
    frontier: Frontier,
    /// `levels[l][i]` is the hash of `NodeId { level: l, index: i }`.
    levels: Vec<Vec<Hash>>,
}

/// A [`MemoryTree`] was asked for a node it does not hold (not complete in its current size).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("node at level {} index {} is not complete in a tree of {tree_size} leaves", .node.level, .node.index)]
pub struct MissingNode {
    /// The node asked for.
    pub node: NodeId,
    /// The size of the tree that was asked.
    pub tree_size: u64,
}

impl MemoryTree {
    /// The empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one leaf hash, storing every node it completes.
    pub fn append(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.frontier.append(leaf, |id, hash| {
            let level = usize::from(id.level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            // Nodes complete left to right, so each lands at the end of its level.
            debug_assert_eq!(levels[level].len() as u64, id.index);
            levels[level].push(hash);
        });
    }

    /// Number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Root of the current tree ([`EMPTY_ROOT`] when empty). O(log n).
    #[must_use]
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The right edge of the current tree.
    #[must_use]
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The stored hash of a complete node, if it is complete in the current tree.
    #[must_use]
    pub fn node(&self, id: NodeId) -> Option<&Hash> {
        let index = usize::try_from(id.index).ok()?;
        self.levels.get(usize::from(id.level))?.get(index)
    }
}

impl Extend<Hash> for MemoryTree {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, leaves: I) {
        for leaf in leaves {
            self.append(leaf);
        }
    }
}

impl FromIterator<Hash> for MemoryTree {
    fn from_iter<I: IntoIterator<Item = Hash>>(leaves: I) -> Self {
        let mut tree = Self::new();
        tree.extend(leaves);
        tree
    }
}

impl NodeReader for MemoryTree {
    type Error = MissingNode;

    fn read_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, MissingNode> {
        ids.iter()
            .map(|&node| {
                self.node(node).copied().ok_or(MissingNode {
                    node,
                    tree_size: self.size(),
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Proof generation internals
// ---------------------------------------------------------------------------------------------

/// The nodes a proof (or root) needs, and how to assemble them after one batched read.
///
/// Each output hash is a *run* of consecutive ids: a single complete node, or the perfect
/// subtrees of an incomplete range, largest first, folded right to left.
#[derive(Debug, Default)]
struct ReadPlan {
    ids: Vec<NodeId>,
    /// Length of each run of `ids`, in output order.
    run_lens: Vec<usize>,
}

impl ReadPlan {
    /// One output: the stored hash of a complete node.
    fn push_node(&mut self, id: NodeId) {
        self.ids.push(id);
        self.run_lens.push(1);
    }

    /// One output: the hash of leaves `[start, end)`, where `start` is a multiple of the largest
    /// power of two not above `end - start` (true of every subtree of an RFC 6962 tree).
    fn push_range(&mut self, start: u64, end: u64) {
        let before = self.ids.len();
        self.ids.extend(perfect_subtrees(start, end));
        self.run_lens.push(self.ids.len() - before);
    }

    /// The inclusion path of complete node `node` in the tree of `tree_size` leaves, bottom up
    /// (for a leaf, this is RFC 9162 `PATH`). Requires `node` complete in `tree_size`.
    fn push_path(&mut self, node: NodeId, tree_size: u64) {
        let level = u32::from(node.level);
        // Index, at `level`, of the node on the path to the tree's last leaf.
        let last = (tree_size - 1) >> level;
        let shape = PathShape::new(node.index, last);
        // Below the level where the paths to `node` and to the last leaf meet, siblings are
        // complete, except possibly the one at the top, which may reach past the last leaf.
        for step in 0..shape.n_inner {
            let sibling_level = level + step;
            let sibling = NodeId::new(level_u8(sibling_level), (node.index >> step) ^ 1);
            if sibling.is_complete_in(tree_size) {
                self.push_node(sibling);
            } else {
                self.push_range(sibling.index << sibling_level, tree_size);
            }
        }
        // Above it, `node`'s ancestors run along the right edge; their left siblings (where the
        // ancestor is a right child) are complete.
        for step in shape.n_inner..(u64::BITS - level) {
            let ancestor = node.index >> step;
            if ancestor == 0 {
                break;
            }
            if ancestor & 1 == 1 {
                self.push_node(NodeId::new(level_u8(level + step), ancestor - 1));
            }
        }
    }

    /// Reads every node in one call and assembles the outputs.
    fn execute<R: NodeReader>(self, reader: &R) -> Result<Vec<Hash>, ProofError<R::Error>> {
        if self.ids.is_empty() {
            return Ok(Vec::new());
        }
        let hashes = reader.read_nodes(&self.ids).map_err(ProofError::Read)?;
        if hashes.len() != self.ids.len() {
            return Err(ProofError::ReadCountMismatch {
                requested: self.ids.len(),
                returned: hashes.len(),
            });
        }
        let mut rest = hashes.as_slice();
        let mut outputs = Vec::with_capacity(self.run_lens.len());
        for run_len in self.run_lens {
            let (run, tail) = rest.split_at(run_len);
            outputs.push(fold_right_edge(run));
            rest = tail;
        }
        Ok(outputs)
    }
}

/// The perfect subtrees covering leaves `[start, end)`, largest first. See
/// [`ReadPlan::push_range`] for the alignment `start` needs.
fn perfect_subtrees(start: u64, end: u64) -> impl Iterator<Item = NodeId> {
    let n_leaves = end - start;
    let mut offset = start;
    (0..u64::BITS)
        .rev()
        .filter(move |level| (n_leaves >> level) & 1 == 1)
        .map(move |level| {
            let id = NodeId::new(level_u8(level), offset >> level);
            offset += 1 << level;
            id
        })
}

/// Number of perfect subtrees in a tree of `size` leaves: one per set bit.
fn n_perfect_subtrees(size: u64) -> usize {
    // At most 64, so the conversion is lossless.
    size.count_ones() as usize
}

/// The last (smallest) perfect subtree of a non-empty tree of `size` leaves.
fn smallest_perfect_subtree(size: u64) -> NodeId {
    let level = size.trailing_zeros();
    NodeId::new(level_u8(level), (size - 1) >> level)
}

/// The hash of adjacent perfect subtrees given largest first (a frontier, or an incomplete
/// range), as RFC 6962 defines it: the right-hand part is always the one left incomplete, so
/// fold from the right. [`EMPTY_ROOT`] for none.
fn fold_right_edge(hashes: &[Hash]) -> Hash {
    let mut rev = hashes.iter().rev();
    let Some(&smallest) = rev.next() else {
        return EMPTY_ROOT;
    };
    rev.fold(smallest, |acc, left| node_hash(left, &acc))
}

/// Tree levels are bit positions in a `u64`, so always below 64 and lossless as `u8`.
#[allow(
    clippy::cast_possible_truncation,
    reason = "levels are bit positions of a u64, below 64"
)]
fn level_u8(level: u32) -> u8 {
    debug_assert!(level < u64::BITS, "level {level} out of range");
    level as u8
}

// ---------------------------------------------------------------------------------------------
// Verification internals
// ---------------------------------------------------------------------------------------------

/// How an inclusion path from a node at `index` to the root splits (RFC 9162's loop, unrolled
/// the transparency-dev way): `n_inner` siblings below the level where the path meets the path
/// to the last node `last`, then `n_border` left siblings along the right edge.
#[derive(Clone, Copy, Debug)]
struct PathShape {
    /// At most 64.
    n_inner: u32,
    /// At most 64.
    n_border: u32,
}

impl PathShape {
    /// Requires `index <= last`.
    fn new(index: u64, last: u64) -> Self {
        let n_inner = u64::BITS - (index ^ last).leading_zeros();
        // `n_inner` may be 64, where a plain shift would overflow.
        let n_border = index.checked_shr(n_inner).unwrap_or(0).count_ones();
        Self { n_inner, n_border }
    }

    fn n_inner(self) -> usize {
        self.n_inner as usize
    }

    fn len(self) -> usize {
        (self.n_inner + self.n_border) as usize
    }
}

/// Hashes `seed` (the node at `index`) up through its inner siblings, taking each as the left or
/// right sibling from the bits of `index`.
fn chain_inner(seed: Hash, inner: &[Hash], index: u64) -> Hash {
    inner.iter().enumerate().fold(seed, |acc, (step, sibling)| {
        if (index >> step) & 1 == 0 {
            node_hash(&acc, sibling)
        } else {
            node_hash(sibling, &acc)
        }
    })
}

/// Like [`chain_inner`], but skips right siblings: what remains is the hash of the part of the
/// tree left of (and including) the seed, i.e. the old tree in a consistency proof.
fn chain_inner_left_only(seed: Hash, inner: &[Hash], index: u64) -> Hash {
    inner.iter().enumerate().fold(seed, |acc, (step, sibling)| {
        if (index >> step) & 1 == 1 {
            node_hash(sibling, &acc)
        } else {
            acc
        }
    })
}

/// Hashes up along the right edge, where every sibling is on the left.
fn chain_border(seed: Hash, border: &[Hash]) -> Hash {
    border
        .iter()
        .fold(seed, |acc, sibling| node_hash(sibling, &acc))
}

fn check_proof_len(expected: usize, actual: usize) -> Result<(), VerifyError> {
    if expected == actual {
        Ok(())
    } else {
        Err(VerifyError::WrongProofLength { expected, actual })
    }
}

fn check_root(tree_size: u64, computed: Hash, expected: &Hash) -> Result<(), VerifyError> {
    if computed == *expected {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch {
            tree_size,
            computed,
            expected: *expected,
        })
    }
}
