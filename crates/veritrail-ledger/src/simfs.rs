//! A simulated disk for tests (feature `testing`): a [`Vfs`] that keeps files and
//! directories in memory, models the page cache, and can lose power.
//!
//! Each file has two contents: the *durable* one, as of its last `sync_data` / `sync_all`,
//! and the *current* one that the running system reads and writes; the changes between them
//! are kept in order. Each directory likewise has durable and current names, the current
//! ones made durable only by [`Vfs::sync_dir`]. [`SimFs::power_cut`] stops the machine
//! (every later call on it fails, as on a dead machine) and returns the disk as it could be
//! found on restart, as a new `SimFs`:
//!
//! - every byte, length and name that was synced is there;
//! - [`Loss::Nothing`] (the process was killed, not the machine): everything else is there
//!   too, as the running system last saw it;
//! - [`Loss::Unsynced`]: nothing else is: every file is its durable content, every
//!   directory its durable names;
//! - [`Loss::Adversarial`]: a random part of the rest is there too, as write-back in any
//!   order can leave it: each page (4 KiB) touched since the last sync holds the state it
//!   had after any number of those writes (none, some, all), pages independently of each
//!   other; some pages are torn, each of their 512-byte sectors taken from a different such
//!   state; the file's length is any length it had since its last sync (an unsynced
//!   `set_len` or growth may or may not have happened; bytes past the old end that were not
//!   written back read as zeros); each name created or removed since its directory's last
//!   sync is there or not, independently (a new directory that is not there takes its
//!   files with it). The choices come from a seeded generator, so a seed names one outcome.
//!
//! A power cut can be scheduled ([`SimFs::schedule_cut`]): the n-th change from now (a
//! write, `set_len`, sync, create or remove) fails and the machine dies with it; a write
//! that dies may have reached the page cache, so it is subject to the loss above. That lets
//! a test cut between any two steps of a commit, which a timer could rarely hit.
//!
//! Why in memory rather than real files with shadow copies: the point is to decide, byte by
//! byte, what survives, which needs the history of every unsynced change; in memory that
//! history is exact, syncs cost nothing (a test runs hundreds of cuts in seconds), nothing
//! needs cleaning up, and the store cannot reach the real disk behind the model's back. What
//! needs real paths (the offline verifier) reads a copy made by [`SimFs::materialize`].
//!
//! Renames are modelled within a directory: the two names change in the page cache, and each
//! is found in either state after a cut until the directory is synced. Not modelled: file
//! modes, hard links, renames across directories (the store uses none), and media that
//! lose synced data or tear inside a 512-byte sector.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::vfs::{FsSyncer, OpenMode, Vfs, VfsFile};

/// Write-back unit: the page cache writes whole pages.
pub const PAGE_BYTES: usize = 4096;
/// The unit a disk writes atomically: a torn page is torn at sector boundaries.
pub const SECTOR_BYTES: usize = 512;

/// What a power cut loses of what was not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Nothing: the process was killed (`kill -9`), not the machine; the page cache, with
    /// every write and name as the running system saw them, is the disk.
    Nothing,
    /// Everything: the disk holds exactly what was synced.
    Unsynced,
    /// A random part, chosen by a generator seeded with this value (see the module doc).
    Adversarial(u64),
}

/// The simulated disk; clones share it (one machine).
#[derive(Clone)]
pub struct SimFs {
    machine: Arc<Mutex<Machine>>,
}

impl fmt::Debug for SimFs {
    /// Counts only: a disk's whole content would drown any message that prints a store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let machine = self.lock();
        f.debug_struct("SimFs")
            .field("nodes", &machine.nodes.len())
            .field("changes", &machine.changes)
            .field("dead", &machine.dead)
            .finish()
    }
}

/// Index of a node in `Machine::nodes`. Nodes are never removed while the machine runs: an
/// open file stays usable after its name is removed, as on a real system.
type Ino = usize;

const ROOT: Ino = 0;

#[derive(Debug)]
struct Machine {
    nodes: Vec<Node>,
    /// Changes (writes, syncs, creations...) made so far.
    changes: u64,
    /// The change at which the power goes: it fails, and so does everything after it.
    cut_at: Option<u64>,
    /// From this change on, every change fails with "no space left on device" and changes
    /// nothing, until the space is back.
    full_from: Option<u64>,
    dead: bool,
}

/// Whether a change needs space (a write, a creation, a longer file) or not (a removal, a
/// shorter file, a sync): on a full disk only the first kind fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    Takes,
    Frees,
}

#[derive(Debug, Clone)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug, Clone, Default)]
struct FileNode {
    /// As of the last sync: what a power cut keeps for sure.
    durable: Vec<u8>,
    /// What the running system reads: the page cache.
    current: Vec<u8>,
    /// The changes from `durable` to `current`, in order: what a power cut may keep part of.
    unsynced: Vec<Change>,
}

#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Clone, Default)]
struct DirNode {
    /// Names as of the last directory sync.
    durable: BTreeMap<OsString, Ino>,
    current: BTreeMap<OsString, Ino>,
}

fn power_is_off() -> io::Error {
    io::Error::other("the simulated machine lost power")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

/// The names of `path` from the root; `..` and prefixes are refused.
fn components(path: &Path) -> io::Result<Vec<&OsStr>> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => names.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: only plain paths are simulated", path.display()),
                ));
            }
        }
    }
    Ok(names)
}

impl Default for SimFs {
    fn default() -> Self {
        Self::new()
    }
}

impl SimFs {
    /// An empty disk: a root directory, durable, and nothing in it.
    pub fn new() -> Self {
        Self::from_nodes(vec![Node::Dir(DirNode::default())])
    }

    fn from_nodes(nodes: Vec<Node>) -> Self {
        Self {
            machine: Arc::new(Mutex::new(Machine {
                nodes,
                changes: 0,
                cut_at: None,
                full_from: None,
                dead: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().expect("simulated disk lock poisoned")
    }

    /// The power goes at the `n`-th change from now (0: the next one), which fails.
    pub fn schedule_cut(&self, n: u64) {
        let mut machine = self.lock();
        machine.cut_at = Some(machine.changes + n);
    }

    /// The disk fills at the `n`-th change from now (0: the next one): from then on every
    /// change that takes space (a write, a creation, a longer file) fails with `ENOSPC`
    /// (`StorageFull`) and changes nothing, while removals, shorter files and syncs go on,
    /// as on a real file system, until [`SimFs::space_back`].
    pub fn schedule_full(&self, n: u64) {
        let mut machine = self.lock();
        machine.full_from = Some(machine.changes + n);
    }

    /// Space is back: changes succeed again.
    pub fn space_back(&self) {
        self.lock().full_from = None;
    }

    /// Changes made so far (writes, `set_len`, syncs, creations, removals).
    pub fn changes(&self) -> u64 {
        self.lock().changes
    }

    /// Whether the power went (scheduled, or by [`SimFs::power_cut`]).
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Cuts the power (if it is still on): from now on every call on this disk fails. Returns
    /// the disk as a restarted machine finds it, after `loss`. Called again, it draws
    /// another outcome of the same cut (tests of the model use that).
    pub fn power_cut(&self, loss: Loss) -> SimFs {
        let mut machine = self.lock();
        machine.dead = true;
        let mut rng = match loss {
            Loss::Nothing | Loss::Unsynced => None,
            Loss::Adversarial(seed) => Some(Rng::new(seed)),
        };
        let mut nodes = vec![Node::Dir(DirNode::default())];
        let keep_current = matches!(loss, Loss::Nothing);
        machine.restart_dir(ROOT, ROOT, &mut nodes, &mut rng, keep_current);
        SimFs::from_nodes(nodes)
    }

    /// Copies the directory `from` of this disk, as it currently reads, into the real
    /// directory `to` (created if missing): for tools that read real paths.
    pub fn materialize(&self, from: &Path, to: &Path) -> io::Result<()> {
        let machine = self.lock();
        let ino = machine.lookup(from)?;
        machine.materialize(ino, to)
    }
}

impl Machine {
    /// Counts a change, or fails it if the power is off or goes now, or, for a change that
    /// takes space, if the disk is full (then it changes nothing).
    fn change(&mut self, space: Space) -> io::Result<()> {
        if self.dead {
            return Err(power_is_off());
        }
        if self.cut_at == Some(self.changes) {
            self.dead = true;
            return Err(power_is_off());
        }
        if space == Space::Takes && self.full_from.is_some_and(|at| self.changes >= at) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        self.changes += 1;
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.dead {
            Err(power_is_off())
        } else {
            Ok(())
        }
    }

    fn dir(&self, ino: Ino) -> Option<&DirNode> {
        match &self.nodes[ino] {
            Node::Dir(dir) => Some(dir),
            Node::File(_) => None,
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Option<&mut DirNode> {
        match &mut self.nodes[ino] {
            Node::Dir(dir) => Some(dir),
            Node::File(_) => None,
        }
    }

    fn file(&self, ino: Ino) -> &FileNode {
        match &self.nodes[ino] {
            Node::File(file) => file,
            Node::Dir(_) => unreachable!("file handles are only made for files"),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> &mut FileNode {
        match &mut self.nodes[ino] {
            Node::File(file) => file,
            Node::Dir(_) => unreachable!("file handles are only made for files"),
        }
    }

    fn lookup(&self, path: &Path) -> io::Result<Ino> {
        let mut ino = ROOT;
        for name in components(path)? {
            ino = *self
                .dir(ino)
                .and_then(|dir| dir.current.get(name))
                .ok_or_else(|| not_found(path))?;
        }
        Ok(ino)
    }

    /// The directory holding `path`, and `path`'s last name.
    fn parent<'p>(&self, path: &'p Path) -> io::Result<(Ino, &'p OsStr)> {
        let name = path.file_name().ok_or_else(|| not_found(path))?;
        let parent = path
            .parent()
            .map_or(Ok(ROOT), |parent| self.lookup(parent))?;
        if self.dir(parent).is_none() {
            return Err(not_found(path));
        }
        Ok((parent, name))
    }

    fn add(&mut self, parent: Ino, name: &OsStr, node: Node) -> Ino {
        let ino = self.nodes.len();
        self.nodes.push(node);
        self.dir_mut(parent)
            .expect("checked to be a directory")
            .current
            .insert(name.to_owned(), ino);
        ino
    }

    fn open(&mut self, path: &Path, mode: OpenMode) -> io::Result<Ino> {
        self.alive()?;
        let existing = self.lookup(path);
        let ino = match (existing, mode) {
            (Ok(_), OpenMode::CreateNew) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: exists", path.display()),
                ));
            }
            (Ok(ino), _) => ino,
            (Err(err), OpenMode::Read | OpenMode::ReadWrite) => return Err(err),
            (Err(_), OpenMode::Create | OpenMode::CreateNew) => {
                let (parent, name) = self.parent(path)?;
                self.change(Space::Takes)?;
                self.add(parent, name, Node::File(FileNode::default()))
            }
        };
        if self.dir(ino).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: is a directory", path.display()),
            ));
        }
        Ok(ino)
    }

    fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        self.alive()?;
        let mut ino = ROOT;
        for name in components(path)? {
            let Some(dir) = self.dir(ino) else {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{}: a parent is a file", path.display()),
                ));
            };
            ino = match dir.current.get(name) {
                Some(&child) => child,
                None => {
                    self.change(Space::Takes)?;
                    self.add(ino, name, Node::Dir(DirNode::default()))
                }
            };
        }
        if self.dir(ino).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: is a file", path.display()),
            ));
        }
        Ok(())
    }

    fn materialize(&self, ino: Ino, to: &Path) -> io::Result<()> {
        match &self.nodes[ino] {
            Node::File(file) => std::fs::write(to, &file.current),
            Node::Dir(dir) => {
                std::fs::create_dir_all(to)?;
                for (name, &child) in &dir.current {
                    self.materialize(child, &to.join(name))?;
                }
                Ok(())
            }
        }
    }

    /// Rebuilds directory `ino` of this (dead) machine as directory `into` of `nodes`, the
    /// disk after the cut.
    fn restart_dir(
        &self,
        ino: Ino,
        into: Ino,
        nodes: &mut Vec<Node>,
        rng: &mut Option<Rng>,
        keep_current: bool,
    ) {
        let dir = self.dir(ino).expect("a directory");
        let all_names: BTreeSet<&OsString> = dir.durable.keys().chain(dir.current.keys()).collect();
        for name in all_names {
            let durable = dir.durable.get(name).copied();
            let current = dir.current.get(name).copied();
            // A name made, removed, or removed and made again since the directory's last sync
            // is found in either state.
            let found = match rng.as_mut() {
                _ if keep_current => current,
                Some(rng) if durable != current => {
                    if rng.chance(1, 2) {
                        current
                    } else {
                        durable
                    }
                }
                _ => durable,
            };
            let Some(child) = found else { continue };
            let node = match &self.nodes[child] {
                Node::Dir(_) => Node::Dir(DirNode::default()),
                Node::File(file) => {
                    let content = match rng.as_mut() {
                        _ if keep_current => file.current.clone(),
                        None => file.durable.clone(),
                        Some(rng) => file.after_cut(rng),
                    };
                    Node::File(FileNode {
                        durable: content.clone(),
                        current: content,
                        unsynced: Vec::new(),
                    })
                }
            };
            let new = nodes.len();
            nodes.push(node);
            let restarted = dir_of(nodes, into);
            restarted.durable.insert(name.clone(), new);
            restarted.current.insert(name.clone(), new);
            if matches!(self.nodes[child], Node::Dir(_)) {
                self.restart_dir(child, new, nodes, rng, keep_current);
            }
        }
    }
}

fn dir_of(nodes: &mut [Node], ino: Ino) -> &mut DirNode {
    match &mut nodes[ino] {
        Node::Dir(dir) => dir,
        Node::File(_) => unreachable!("only directories get names"),
    }
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).expect("simulated files fit in memory")
}

impl FileNode {
    fn write(&mut self, data: &[u8], offset: u64) {
        let start = usize_of(offset);
        let end = start + data.len();
        if self.current.len() < end {
            self.current.resize(end, 0);
        }
        self.current[start..end].copy_from_slice(data);
        self.unsynced.push(Change::Write {
            offset,
            data: data.to_vec(),
        });
    }

    fn set_len(&mut self, len: u64) {
        self.current.resize(usize_of(len), 0);
        self.unsynced.push(Change::SetLen(len));
    }

    fn sync(&mut self) {
        self.durable.clone_from(&self.current);
        self.unsynced.clear();
    }

    /// One content the file could have after a power cut (see the module doc).
    fn after_cut(&self, rng: &mut Rng) -> Vec<u8> {
        // The lengths the file had since its last sync, and the pages each change touched.
        let mut lengths = vec![self.durable.len()];
        let mut touched: BTreeMap<usize, Vec<&Change>> = BTreeMap::new();
        let mut len = self.durable.len();
        for change in &self.unsynced {
            let (first, end, new_len) = match change {
                Change::Write { offset, data } => {
                    let start = usize_of(*offset);
                    (start, start + data.len(), len.max(start + data.len()))
                }
                // A cut zeroes what lay past the new end; a growth adds zeros already there.
                Change::SetLen(new_len) => (usize_of(*new_len), len, usize_of(*new_len)),
            };
            if first < end {
                for page in first / PAGE_BYTES..=(end - 1) / PAGE_BYTES {
                    touched.entry(page).or_default().push(change);
                }
            }
            len = new_len;
            lengths.push(len);
        }
        let final_len = lengths[rng.below(lengths.len())];
        let mut out = self.durable.clone();
        out.resize(final_len, 0);
        for (page, changes) in touched {
            let page_start = page * PAGE_BYTES;
            if page_start >= final_len {
                continue;
            }
            // For each sector, how many of the page's changes it keeps: one number for the
            // whole page, or (a torn page) one per sector.
            let n_versions = changes.len() + 1;
            let kept: Vec<usize> = if rng.chance(1, 4) {
                (0..PAGE_BYTES / SECTOR_BYTES)
                    .map(|_| rng.below(n_versions))
                    .collect()
            } else {
                vec![rng.below(n_versions); PAGE_BYTES / SECTOR_BYTES]
            };
            let mut bytes = vec![0u8; PAGE_BYTES];
            if let Some(durable) = self.durable.get(page_start..) {
                let n = durable.len().min(PAGE_BYTES);
                bytes[..n].copy_from_slice(&durable[..n]);
            }
            let page_end = final_len.min(page_start + PAGE_BYTES);
            for version in 0..n_versions {
                if version > 0 {
                    apply(&mut bytes, page_start, changes[version - 1]);
                }
                for (sector, _) in kept.iter().enumerate().filter(|(_, k)| **k == version) {
                    let from = page_start + sector * SECTOR_BYTES;
                    let to = (from + SECTOR_BYTES).min(page_end);
                    if from < to {
                        out[from..to].copy_from_slice(&bytes[from - page_start..to - page_start]);
                    }
                }
            }
        }
        out
    }
}

/// Applies `change` to the page of bytes starting at `page_start`.
fn apply(page: &mut [u8], page_start: usize, change: &Change) {
    let page_end = page_start + page.len();
    match change {
        Change::Write { offset, data } => {
            let start = usize_of(*offset).max(page_start);
            let end = (usize_of(*offset) + data.len()).min(page_end);
            if start < end {
                let from = start - usize_of(*offset);
                page[start - page_start..end - page_start]
                    .copy_from_slice(&data[from..from + (end - start)]);
            }
        }
        Change::SetLen(len) => {
            let cut = usize_of(*len).clamp(page_start, page_end);
            page[cut - page_start..].fill(0);
        }
    }
}

/// xorshift64*: small, seeded, and enough to pick outcomes.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Never zero, which xorshift cannot leave.
        Self((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0), near enough for a test.
    fn below(&mut self, n: usize) -> usize {
        usize_of(self.next() % n as u64)
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }
}

impl Vfs for SimFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let ino = self.lock().open(path, mode)?;
        Ok(Box::new(SimFile {
            machine: Arc::clone(&self.machine),
            ino,
            writable: mode != OpenMode::Read,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.lock().create_dir_all(path)
    }

    fn create_private_dir(&self, path: &Path) -> io::Result<()> {
        self.lock().create_dir_all(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        let machine = self.lock();
        !machine.dead
            && machine
                .lookup(path)
                .is_ok_and(|ino| machine.dir(ino).is_some())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let machine = self.lock();
        machine.alive()?;
        let ino = machine.lookup(path)?;
        let dir = machine.dir(ino).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a directory", path.display()),
            )
        })?;
        Ok(dir.current.keys().cloned().collect())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut machine = self.lock();
        machine.alive()?;
        let ino = machine.lookup(path)?;
        if machine.dir(ino).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: is a directory", path.display()),
            ));
        }
        let (parent, name) = machine.parent(path)?;
        machine.change(Space::Frees)?;
        machine
            .dir_mut(parent)
            .expect("checked to be a directory")
            .current
            .remove(name);
        Ok(())
    }

    fn file_system_syncer(&self, _dir: &Path) -> io::Result<Option<Box<dyn FsSyncer>>> {
        Ok(Some(Box::new(SimSyncer {
            machine: Arc::clone(&self.machine),
        })))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut machine = self.lock();
        machine.alive()?;
        let ino = machine.lookup(path)?;
        if machine.dir(ino).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: not a directory", path.display()),
            ));
        }
        machine.change(Space::Frees)?;
        let dir = machine.dir_mut(ino).expect("checked to be a directory");
        dir.durable.clone_from(&dir.current);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut machine = self.lock();
        machine.alive()?;
        let ino = machine.lookup(from)?;
        if machine.dir(ino).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: is a directory", from.display()),
            ));
        }
        let (from_parent, from_name) = machine.parent(from)?;
        let (to_parent, to_name) = machine.parent(to)?;
        if from_parent != to_parent {
            return Err(io::Error::new(
                io::ErrorKind::CrossesDevices,
                "the simulated disk renames within a directory only",
            ));
        }
        machine.change(Space::Frees)?;
        let dir = machine
            .dir_mut(from_parent)
            .expect("checked to be a directory");
        dir.current.remove(from_name);
        dir.current.insert(to_name.to_owned(), ino);
        Ok(())
    }
}

/// An open file of a [`SimFs`].
struct SimFile {
    machine: Arc<Mutex<Machine>>,
    ino: Ino,
    writable: bool,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("ino", &self.ino).finish()
    }
}

/// The simulated disk's `syncfs`: every file and directory as it is now becomes durable.
#[derive(Debug)]
struct SimSyncer {
    machine: Arc<Mutex<Machine>>,
}

impl FsSyncer for SimSyncer {
    fn sync(&self) -> io::Result<()> {
        let mut machine = self.machine.lock().expect("simulated disk lock poisoned");
        machine.alive()?;
        machine.change(Space::Frees)?;
        for node in &mut machine.nodes {
            match node {
                Node::File(file) => file.sync(),
                Node::Dir(dir) => dir.durable.clone_from(&dir.current),
            }
        }
        Ok(())
    }
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().expect("simulated disk lock poisoned")
    }

    /// The machine, ready for a change to this file that takes or frees `space`.
    fn lock_for_change(&self, space: Space) -> io::Result<MutexGuard<'_, Machine>> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file opened for reading only",
            ));
        }
        let mut machine = self.lock();
        machine.change(space)?;
        Ok(machine)
    }
}

impl VfsFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let machine = self.lock();
        machine.alive()?;
        let current = &machine.file(self.ino).current;
        let start = usize_of(offset);
        let bytes = current
            .get(start..start + buf.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file opened for reading only",
            ));
        }
        let mut machine = self.lock();
        let was_dead = machine.dead;
        let result = machine.change(Space::Takes);
        let no_space = result
            .as_ref()
            .is_err_and(|err| err.kind() == io::ErrorKind::StorageFull);
        // A write the power cut short may still have reached the page cache: keep it as
        // unsynced, for the cut to keep or lose. A full disk takes none of it.
        if !was_dead && !no_space {
            machine.file_mut(self.ino).write(buf, offset);
        }
        result
    }

    fn len(&self) -> io::Result<u64> {
        let machine = self.lock();
        machine.alive()?;
        Ok(machine.file(self.ino).current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut machine = self.lock();
        let grows = len > machine.file(self.ino).current.len() as u64;
        drop(machine);
        machine = self.lock_for_change(if grows { Space::Takes } else { Space::Frees })?;
        machine.file_mut(self.ino).set_len(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.lock_for_change(Space::Frees)?
            .file_mut(self.ino)
            .sync();
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn path(text: &str) -> &Path {
        Path::new(text)
    }

    /// The file's content, `None` if it is not there.
    fn read(fs: &SimFs, at: &str) -> Option<Vec<u8>> {
        let file = fs.open(path(at), OpenMode::Read).ok()?;
        let mut bytes = vec![0; usize_of(file.len().expect("len"))];
        file.read_exact_at(&mut bytes, 0).expect("read");
        Some(bytes)
    }

    /// `/d/f`, with `/d` durable and `f`'s name synced.
    fn disk_with_file() -> (SimFs, Box<dyn VfsFile>) {
        let fs = SimFs::new();
        fs.create_dir_all(path("/d")).expect("mkdir");
        fs.sync_dir(path("/")).expect("sync /");
        let file = fs.open(path("/d/f"), OpenMode::Create).expect("create");
        fs.sync_dir(path("/d")).expect("sync /d");
        (fs, file)
    }

    #[test]
    fn a_cut_keeps_what_was_synced_and_loses_the_rest() {
        let (fs, file) = disk_with_file();
        file.write_all_at(b"synced", 0).expect("write");
        file.sync_data().expect("sync");
        file.write_all_at(b" and not", 6).expect("write");
        let unnamed = fs.open(path("/d/g"), OpenMode::Create).expect("create");
        unnamed.write_all_at(b"data", 0).expect("write");
        unnamed.sync_all().expect("sync");
        assert_eq!(read(&fs, "/d/f").expect("f"), b"synced and not");

        let after = fs.power_cut(Loss::Unsynced);
        assert_eq!(read(&after, "/d/f").expect("f"), b"synced");
        assert_eq!(
            read(&after, "/d/g"),
            None,
            "a synced file whose name was not"
        );
        // The dead machine refuses everything, reads included.
        assert!(file.write_all_at(b"x", 0).is_err());
        assert!(file.read_exact_at(&mut [0; 1], 0).is_err());
        assert!(file.len().is_err());
        assert!(fs.open(path("/d/f"), OpenMode::Read).is_err());
        assert!(fs.is_dead() && !after.is_dead());
    }

    #[test]
    fn names_are_durable_only_once_their_directory_is_synced() {
        let (fs, file) = disk_with_file();
        file.sync_all().expect("sync");
        fs.create_dir_all(path("/d/sub/deeper")).expect("mkdir");
        let deep = fs
            .open(path("/d/sub/deeper/x"), OpenMode::Create)
            .expect("create");
        deep.sync_all().expect("sync");
        fs.sync_dir(path("/d/sub/deeper")).expect("sync");
        fs.sync_dir(path("/d/sub")).expect("sync");
        fs.remove_file(path("/d/f")).expect("remove");
        // `/d` was not synced: `sub` is not there (and takes `x` along), `f` is still there.
        let after = fs.power_cut(Loss::Unsynced);
        assert!(!after.is_dir(path("/d/sub")));
        assert_eq!(read(&after, "/d/f"), Some(Vec::new()));

        let (fs, _file) = disk_with_file();
        fs.remove_file(path("/d/f")).expect("remove");
        fs.sync_dir(path("/d")).expect("sync");
        assert_eq!(read(&fs.power_cut(Loss::Unsynced), "/d/f"), None);
    }

    #[test]
    fn a_killed_process_leaves_what_it_wrote_and_renamed_unsynced_or_not() {
        let (fs, file) = disk_with_file();
        file.write_all_at(b"written", 0).expect("write");
        let other = fs
            .open(path("/d/tmp"), OpenMode::CreateNew)
            .expect("create");
        other.write_all_at(b"new", 0).expect("write");
        fs.rename(path("/d/tmp"), path("/d/g")).expect("rename");
        let after = fs.power_cut(Loss::Nothing);
        assert_eq!(read(&after, "/d/f"), Some(b"written".to_vec()));
        assert_eq!(read(&after, "/d/g"), Some(b"new".to_vec()));
        assert_eq!(read(&after, "/d/tmp"), None);
        // A power cut of the same moment keeps neither.
        let cut = fs.power_cut(Loss::Unsynced);
        assert_eq!(read(&cut, "/d/g"), None);
    }

    #[test]
    fn adversarial_cuts_keep_any_mix_of_unsynced_sectors_and_invent_nothing() {
        let (fs, file) = disk_with_file();
        file.write_all_at(&[0x11; 4 * PAGE_BYTES], 0)
            .expect("write");
        file.sync_data().expect("sync");
        // Overwrite the four pages, then grow the file by four more.
        file.write_all_at(&[0x22; 4 * PAGE_BYTES], 0)
            .expect("write");
        file.write_all_at(&[0x33; 4 * PAGE_BYTES], 4 * PAGE_BYTES as u64)
            .expect("write");
        let new = fs.open(path("/d/new"), OpenMode::Create).expect("create");
        new.sync_data().expect("sync");

        let (mut lengths, mut sectors, mut new_found) = (HashSet::new(), HashSet::new(), 0);
        let (mut torn_pages, mut mixed_files) = (0, 0);
        for seed in 0..200 {
            let after = fs.power_cut(Loss::Adversarial(seed));
            let bytes = read(&after, "/d/f").expect("a synced name is always there");
            lengths.insert(bytes.len());
            new_found += usize::from(read(&after, "/d/new").is_some());
            for (at, sector) in bytes.chunks(SECTOR_BYTES).enumerate() {
                let byte = sector[0];
                assert!(
                    sector.iter().all(|b| *b == byte),
                    "seed {seed}: a sector is written whole"
                );
                let allowed: &[u8] = if at < 4 * PAGE_BYTES / SECTOR_BYTES {
                    &[0x11, 0x22]
                } else {
                    &[0x33, 0]
                };
                assert!(
                    allowed.contains(&byte),
                    "seed {seed}: sector {at} is {byte:#x}"
                );
                sectors.insert((at, byte));
            }
            let page_values: Vec<HashSet<u8>> = bytes
                .chunks(PAGE_BYTES)
                .map(|page| page.iter().copied().collect())
                .collect();
            torn_pages += page_values.iter().filter(|values| values.len() > 1).count();
            let whole_pages: HashSet<u8> = page_values[..4]
                .iter()
                .filter(|values| values.len() == 1)
                .flatten()
                .copied()
                .collect();
            mixed_files += usize::from(whole_pages.len() > 1);
        }
        assert_eq!(lengths, HashSet::from([4 * PAGE_BYTES, 8 * PAGE_BYTES]));
        assert_eq!(
            sectors.len(),
            2 * 8 * PAGE_BYTES / SECTOR_BYTES,
            "every sector both ways"
        );
        assert!(torn_pages > 0 && mixed_files > 0);
        assert!(new_found > 0 && new_found < 200, "{new_found}");
    }

    #[test]
    fn an_unsynced_set_len_may_or_may_not_have_happened() {
        let (fs, file) = disk_with_file();
        file.write_all_at(&[7; 100], 0).expect("write");
        file.sync_data().expect("sync");
        file.set_len(10).expect("cut");
        file.set_len(50).expect("grow");
        let mut seen = HashSet::new();
        for seed in 0..100 {
            let bytes = read(&fs.power_cut(Loss::Adversarial(seed)), "/d/f").expect("f");
            // Past 10 the bytes are 7 if the cut was not written back, else zeros.
            let tail: HashSet<u8> = bytes[10..].iter().copied().collect();
            assert!(tail.len() <= 1, "seed {seed}: one page, one state");
            seen.insert((bytes.len(), tail.into_iter().next()));
        }
        for expected in [
            (100, Some(7)),
            (100, Some(0)),
            (10, None),
            (50, Some(0)),
            (50, Some(7)),
        ] {
            assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
        }
    }

    #[test]
    fn a_scheduled_cut_fails_that_change_and_all_after_it() {
        let (fs, file) = disk_with_file();
        file.write_all_at(b"a", 0).expect("write");
        fs.schedule_cut(1);
        file.sync_data().expect("the last change before the cut");
        assert!(file.write_all_at(b"bc", 1).is_err(), "the cut");
        assert!(fs.is_dead());
        assert!(file.sync_data().is_err());
        // The write that died may have reached the page cache: a cut may keep it.
        let outcomes: HashSet<Vec<u8>> = (0..50)
            .map(|seed| read(&fs.power_cut(Loss::Adversarial(seed)), "/d/f").expect("f"))
            .collect();
        assert!(outcomes.contains(b"a".as_slice()) && outcomes.contains(b"abc".as_slice()));
        assert_eq!(
            read(&fs.power_cut(Loss::Unsynced), "/d/f").expect("f"),
            b"a"
        );
    }

    #[test]
    fn redb_keeps_its_durable_commits_through_adversarial_cuts() {
        const TABLE: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");
        let builder = redb::Builder::new();
        let fs = SimFs::new();
        let db = fs
            .create_redb(path("/index.redb"), &builder)
            .expect("create");
        fs.sync_dir(path("/")).expect("sync");
        // Every fifth commit durable, the others not, as the id index does (ids without a
        // sync, the marker with one); the last three not durable.
        for round in 0..23u64 {
            let mut txn = db.begin_write().expect("txn");
            let durability = if round % 5 == 4 {
                redb::Durability::Immediate
            } else {
                redb::Durability::None
            };
            txn.set_durability(durability).expect("durability");
            {
                let mut table = txn.open_table(TABLE).expect("table");
                for key in 0..200 {
                    table.insert(round * 1000 + key, round).expect("insert");
                }
            }
            txn.commit().expect("commit");
        }
        for seed in 0..40 {
            let after = fs.power_cut(Loss::Adversarial(seed));
            let db = after
                .create_redb(path("/index.redb"), &builder)
                .expect("reopen");
            let txn = redb::ReadableDatabase::begin_read(&db).expect("read");
            let table = txn.open_table(TABLE).expect("table");
            for round in 0..23 {
                let found = redb::ReadableTable::get(&table, round * 1000 + 199)
                    .expect("get")
                    .map(|value| value.value());
                if round < 20 {
                    // A durable commit makes the ones before it durable too.
                    assert_eq!(found, Some(round), "seed {seed}: round {round}");
                } else {
                    assert!(found.is_none() || found == Some(round), "seed {seed}");
                }
            }
        }
    }
}
