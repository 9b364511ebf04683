//! The log signing key: made on first start, kept in a file only its owner can read; and
//! the rules for every secret on disk ([`create_private_dir`], [`create_private_file`],
//! [`loose_mode`]): the data directory is 0700, files holding secrets are 0600, made so
//! before anything is written to them (never chmod-ed after, which leaves a window).
//!
//! The file holds the C2SP signed-note private key string (`PRIVATE+KEY+<name>+<id>+<key>`)
//! and a newline. The matching verifier key string is what users pin to check checkpoints
//! offline; [`verifier_key`] prints it without touching the private key's secrecy.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use veritrail_core::note::NoteSigner;

use crate::vfs::{RealFs, Vfs};

/// Errors loading or creating the log key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the log key {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the log key {path} is not a signed-note private key: {reason}")]
    Invalid { path: String, reason: String },
    #[error("the log key {path} is named {found:?} but the configured origin prefix is {wanted:?}")]
    WrongName {
        path: String,
        found: String,
        wanted: String,
    },
    #[error("the log key {path} can be read by other users (mode {mode:o}); run chmod 600 on it")]
    TooOpen { path: String, mode: u32 },
}

/// Loads the signing key at `path`, or makes a new one named `name` if there is none.
pub fn load_or_create_signer(path: &Path, name: &str) -> Result<NoteSigner, KeyError> {
    let shown = path.display().to_string();
    let io_err = |source| KeyError::Io {
        path: shown.clone(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path).map_err(io_err)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen { path: shown, mode });
            }
            let signer = NoteSigner::parse(text.trim_end()).map_err(|err| KeyError::Invalid {
                path: shown.clone(),
                reason: err.to_string(),
            })?;
            if signer.name() != name {
                return Err(KeyError::WrongName {
                    path: shown,
                    found: signer.name().to_owned(),
                    wanted: name.to_owned(),
                });
            }
            Ok(signer)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|err| io_err(io::Error::other(err.to_string())))?;
            let signer = NoteSigner::from_seed(name, seed).map_err(|err| KeyError::Invalid {
                path: shown.clone(),
                reason: err.to_string(),
            })?;
            seed.fill(0);
            if let Some(parent) = path.parent() {
                create_private_dir(parent).map_err(io_err)?;
            }
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io_err)?;
            file.write_all(format!("{}\n", signer.to_skey_string()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io_err)?;
            if let Some(parent) = path.parent() {
                RealFs.sync_dir(parent).map_err(io_err)?;
            }
            tracing::info!(path = %shown, "created a new log signing key");
            Ok(signer)
        }
        Err(err) => Err(io_err(err)),
    }
}

/// The verifier key string (`<name>+<id>+<key>`) of the signing key at `path`.
pub fn verifier_key(path: &Path) -> Result<String, KeyError> {
    let shown = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: shown.clone(),
        source,
    })?;
    let signer = NoteSigner::parse(text.trim_end()).map_err(|err| KeyError::Invalid {
        path: shown,
        reason: err.to_string(),
    })?;
    Ok(signer.verifier().to_vkey_string())
}

/// Creates `dir` (and its parents) if it is missing, the last with mode 0700: the data
/// directory holds the ledger, the control plane and the keys, readable by the server's user
/// only. An existing directory is left as it is ([`loose_mode`] says whether it is private).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(err) => Err(err),
        // The new name is durable only once its parent directory is synced: without it a
        // power cut after the first start could take the whole data directory.
        Ok(()) => match dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            Some(parent) => RealFs.sync_dir(parent),
            None => RealFs.sync_dir(Path::new(".")),
        },
    }
}

/// Creates the empty file `path` with mode 0600 if it is missing, so that a store opened on
/// it next (redb) writes its secrets into a private file from the first byte.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// The mode of `path` when its group or others have any access to it (`None` when it is
/// private, or missing).
pub fn loose_mode(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}
