//! A real full disk for tests: a small tmpfs mounted for a test's life (as root; where it
//! cannot be mounted the caller says why and returns), and a ballast file that fills it.
//! Shared by path with `veritrail-server`'s tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test's life, unmounted (lazily: files may still be open) on drop.
pub(crate) struct SmallDisk {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    pub(crate) fn mount(megabytes: u32) -> Result<Self, String> {
        let parent = tempfile::tempdir().map_err(|err| err.to_string())?;
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).map_err(|err| err.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=0700")])
            .arg("tmpfs")
            .arg(&path)
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "cannot mount a tmpfs (root is needed): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            path,
            _parent: parent,
        })
    }

    /// Where it is mounted.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `path` until the disk is full, leaving about `spare` bytes free; returns its size.
pub(crate) fn fill(path: &Path, spare: u64) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("ballast");
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = file.flush();
    let keep = written.saturating_sub(spare);
    file.set_len(keep).expect("shrink the ballast");
    file.sync_all().expect("sync the ballast");
    keep
}
