//! File helpers: atomic writes (temp file in the same directory, fsync, rename) and private
//! (0600 / 0700) files and directories.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use madoguchi_ports::PortError;

/// Names starting with this are the adapters' own (temp files, blob metadata); they are never
/// user data, listings skip them, and blob keys may not use them.
pub(crate) const RESERVED_PREFIX: &str = ".madoguchi-";

/// Maps an I/O error to a port error. The message names the operation, never a path that
/// could carry personal data (blob keys may).
pub(crate) fn io_err(what: &str, e: io::Error) -> PortError {
    match e.kind() {
        io::ErrorKind::NotFound => PortError::NotFound,
        _ => PortError::Backend(format!("{what}: {}", e.kind())),
    }
}

/// Creates `dir` (and parents) with mode 0700 for the last component if it is new.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PortError> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(|e| io_err("create dir", e))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_err("create private dir", e)),
    }
}

/// A fresh temp path in `dir`, with the reserved prefix so listings skip it.
pub(crate) fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        "{RESERVED_PREFIX}tmp-{}",
        uuid::Uuid::now_v7().simple()
    ))
}

/// Creates a new file that is `mode` from its first instant (no wider window).
pub(crate) fn create_new_with_mode(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// Fsyncs a directory so a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a part.
/// The temp file lives in the same directory (same filesystem), is fsynced, then renamed over
/// `path`; the directory is fsynced after the rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    let tmp = temp_path(dir);
    let result = (|| {
        let mut f = create_new_with_mode(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// True if the file's permission bits allow anyone but the owner.
pub(crate) fn is_wider_than_owner(path: &Path) -> io::Result<bool> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o077 != 0)
}
