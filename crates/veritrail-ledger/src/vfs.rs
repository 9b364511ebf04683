//! The file system as the embedded store sees it: the few operations it uses, behind a
//! trait, so that a test can run the store on a disk that loses what was never synced.
//!
//! The durability of the embedded store rests on *where* it calls `fdatasync`, `fsync` and
//! a directory sync. A process killed with SIGKILL keeps the operating system's page cache,
//! so a crash test on the real file system cannot tell a missing sync from a present one.
//! [`Vfs`] and [`VfsFile`] are the seam: [`RealFs`] passes each call to `std::fs` (one
//! virtual call per system call, nothing buffered or reordered), and the simulated disk of
//! the `testing` feature (`simfs::SimFs`) keeps, for every file and directory, what a power
//! cut would leave of it.
//!
//! Who uses it: the [`Journal`](crate::journal::Journal), the
//! [`EmbeddedStore`](crate::EmbeddedStore)'s per-tenant files and the id index. The index's
//! file (`index.redb`) goes through [`Vfs::create_redb`]: on a [`RealFs`] that is redb's own
//! file backend, unchanged (it also takes redb's inter-process locks); on any other `Vfs`,
//! [`VfsBackend`] serves redb's reads, writes and syncs from a [`VfsFile`].
//!
//! The contract every implementation keeps, and the store relies on:
//!
//! - A write is durable only after `sync_data` or `sync_all` of its file returned `Ok`; both
//!   also make the file's length durable.
//! - A new, removed, renamed or re-created name in a directory is durable only after
//!   [`Vfs::sync_dir`] of that directory returned `Ok` (a file's own sync does not make its
//!   name durable, and a new directory's name lives in its parent).
//! - Nothing is durable after a call that failed.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How [`Vfs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, for reading only.
    Read,
    /// An existing file, for reading and writing.
    ReadWrite,
    /// For reading and writing, created empty if missing (never truncated).
    Create,
    /// For reading and writing; the file must not exist yet.
    CreateNew,
}

/// The file system operations of the embedded store. Paths are those the store was opened
/// with, joined with its file names.
pub trait Vfs: Send + Sync + fmt::Debug + 'static {
    /// Opens the file at `path`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>>;

    /// Creates `path` and its missing parents. The new names are not durable until each
    /// parent is synced.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// [`Vfs::create_dir_all`], the last directory readable by its owner only (0700): the
    /// data directory holds the ledger and the keys.
    fn create_private_dir(&self, path: &Path) -> io::Result<()>;

    /// Whether `path` is a directory (false when it is missing or cannot be read).
    fn is_dir(&self, path: &Path) -> bool;

    /// The names in the directory `path`, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// Removes the file at `path`; not durable until its directory is synced.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes the names in the directory `path` (files created or removed in it) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// A [`FsSyncer`] for the file system holding the directory `dir`, if this file system
    /// has one: a caller with many files to make durable then makes one call, not one per
    /// file. None by default.
    fn file_system_syncer(&self, dir: &Path) -> io::Result<Option<Box<dyn FsSyncer>>> {
        let _ = dir;
        Ok(None)
    }

    /// Gives the file `from` the name `to` in the same directory, replacing what `to` named,
    /// at once for readers; not durable until the directory is synced (a power cut before
    /// leaves `to` naming the old file or the new one, and `from` there or not).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Opens (creating if needed) the redb database at `path`. The default goes through
    /// [`Vfs::open`] and a [`VfsBackend`].
    fn create_redb(
        &self,
        path: &Path,
        builder: &redb::Builder,
    ) -> Result<redb::Database, redb::DatabaseError> {
        let file = self.open(path, OpenMode::Create)?;
        builder.create_with_backend(VfsBackend::new(file))
    }
}

/// Makes every file and directory of one file system durable at once (Linux `syncfs`),
/// reporting a write-back error of any of its files since the previous call (or since the
/// syncer was made).
pub trait FsSyncer: Send + Sync + fmt::Debug {
    fn sync(&self) -> io::Result<()>;
}

/// An open file of a [`Vfs`]. Positioned reads and writes only: the store never seeks.
#[allow(
    clippy::len_without_is_empty,
    reason = "a file's length is a size, not a collection"
)]
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// Reads exactly `buf.len()` bytes at `offset`; `UnexpectedEof` past the end.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`, growing the file (with zeros) if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// The file's current length.
    fn len(&self) -> io::Result<u64>;

    /// Cuts or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// `fdatasync`: the file's data and length are durable on `Ok`.
    fn sync_data(&self) -> io::Result<()>;

    /// `fsync`: [`VfsFile::sync_data`] and the rest of the file's metadata.
    fn sync_all(&self) -> io::Result<()>;

    /// Makes `len` bytes at `offset` read as zeros, giving their disk blocks back where the
    /// file system can (a hole); the file's length is unchanged. This default writes the
    /// zeros.
    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        write_zeros(self, offset, len)
    }
}

/// Writes zeros over `len` bytes of `file` at `offset`, not past its end.
fn write_zeros(file: &(impl VfsFile + ?Sized), offset: u64, len: u64) -> io::Result<()> {
    let end = (offset + len).min(file.len()?);
    let zeros = vec![0u8; 1 << 16];
    let mut at = offset;
    while at < end {
        let n = (end - at).min(zeros.len() as u64);
        file.write_all_at(&zeros[..usize::try_from(n).expect("at most 64 KiB")], at)?;
        at += n;
    }
    Ok(())
}

/// The directories of `path` (itself included) that do not exist yet, outermost first:
/// after creating them, the caller syncs each one's parent to make its name durable.
pub(crate) fn missing_dirs(vfs: &dyn Vfs, path: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = path
        .ancestors()
        .take_while(|dir| !dir.as_os_str().is_empty() && !vfs.is_dir(dir))
        .map(Path::to_owned)
        .collect();
    missing.reverse();
    missing
}

/// The directory holding `path` (`.` for a relative name without one).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The real file system: every call goes to `std::fs` as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Vfs for RealFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut options = OpenOptions::new();
        options.read(true);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                options.write(true);
            }
            OpenMode::Create => {
                options.write(true).create(true).truncate(false);
            }
            OpenMode::CreateNew => {
                options.write(true).create_new(true);
            }
        }
        Ok(Box::new(options.open(path)?))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create_private_dir(&self, path: &Path) -> io::Result<()> {
        crate::keys::create_private_dir(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|entry| Ok(entry?.file_name()))
            .collect()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    /// `syncfs` on a descriptor of `dir` held for the syncer's life, so that a write-back
    /// error after it was opened is reported by the next call.
    fn file_system_syncer(&self, dir: &Path) -> io::Result<Option<Box<dyn FsSyncer>>> {
        Ok(Some(Box::new(RealSyncer(File::open(dir)?))))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    /// redb's own file backend, as `redb::Builder::create` opens it: besides reads and
    /// writes it holds redb's byte-range locks, which keep a second process off the index.
    fn create_redb(
        &self,
        path: &Path,
        builder: &redb::Builder,
    ) -> Result<redb::Database, redb::DatabaseError> {
        builder.create(path)
    }
}

impl VfsFile for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }

    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        use rustix::fs::{FallocateFlags, fallocate};
        if len == 0 {
            return Ok(());
        }
        match fallocate(
            self,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        ) {
            Ok(()) => Ok(()),
            // A file system without holes: the zeros are written instead.
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
                write_zeros(self, offset, len)
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// A redb [`StorageBackend`](redb::StorageBackend) over a [`VfsFile`], so that a database
/// lives on any [`Vfs`]. It takes no locks (redb then allows one writer per database, its
/// default mode), which is all a simulated disk in one process needs.
#[derive(Debug)]
pub struct VfsBackend {
    file: Box<dyn VfsFile>,
}

impl VfsBackend {
    pub fn new(file: Box<dyn VfsFile>) -> Self {
        Self { file }
    }
}

impl redb::StorageBackend for VfsBackend {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }
}

/// [`RealFs`]'s [`FsSyncer`]: `syncfs` on a directory's descriptor.
#[derive(Debug)]
struct RealSyncer(File);

impl FsSyncer for RealSyncer {
    fn sync(&self) -> io::Result<()> {
        rustix::fs::syncfs(&self.0).map_err(io::Error::from)
    }
}
