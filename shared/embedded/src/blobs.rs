//! `BlobStore` over plain files: object `<key>` of bucket `<b>` is the file
//! `DATA_DIR/blobs/<b>/<key>`, so files can be inspected and dropped in by hand.
//!
//! - Metadata (etag, content type) lives in a sidecar JSON file at
//!   `DATA_DIR/blobs/<b>/.madoguchi-meta/<key>`, stamped with the data file's
//!   (device, inode, size, mtime). A sidecar whose stamp does not match the data file (a file
//!   dropped in by hand, a crash between the two renames, a read racing a write) is ignored:
//!   the etag is then computed from the file and the content type is unknown.
//! - The etag is the hex SHA-256 of the body (S3's plain etag is the MD5 of the body): equal
//!   bodies have equal etags, so rewriting identical bytes keeps the etag.
//! - `put` writes a temp file in the key's directory, fsyncs it and renames it into place, so
//!   readers see the old or the new body, never a part. `get` streams the open file.
//!   [`FsBlobStore::put_stream`] does the same from a stream, within a size range (presigned
//!   POST uploads through the local host).
//! - `upload` ([`BlobStore::upload`]) writes its chunks to such a temp file (named
//!   `.madoguchi-tmp-*`, so listings and reads skip it) as they come, hashing them on the way;
//!   `finish` fsyncs it, renames it into place and writes the sidecar, exactly as `put` does.
//!   `abort` removes the temp file, and so does dropping an unfinished upload; only a process
//!   crash can leave one behind, as it can for `put`. `put_stream` is built on it.
//! - `presign_post` returns a form for `POST {public_url}/_blobs/{bucket}` whose policy is
//!   HMAC-signed (see `presign.rs`); the host checks it with
//!   [`crate::PresignVerifier::verify_post_form`] and stores the file with `put_stream`.
//! - Names starting with `.madoguchi-` are the store's own (temp files, sidecars): listings
//!   skip them and keys may not use them. Because keys are paths, a key cannot also be a
//!   "directory" of other keys (`a` and `a/b` cannot both exist); such a put is `Invalid`.
//!   Each key segment is at most 255 bytes (the filesystem's name limit).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::ops::RangeInclusive;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use madoguchi_ports::blob::check_key;
use madoguchi_ports::{
    BlobBody, BlobMeta, BlobStore, BlobUpload, Clock, PortError, PortResult, PresignMethod,
    Presigned, PresignedPost, UploadPolicy,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::fsutil::{self, RESERVED_PREFIX};
use crate::presign;

const META_DIR: &str = ".madoguchi-meta";
const MAX_SEGMENT_BYTES: usize = 255;
/// Blobs hold citizens' attachments: owner-only, like the database and the outbox.
const BLOB_FILE_MODE: u32 = 0o600;

/// One bucket on the filesystem. Obtain it from [`crate::EmbeddedBackend::blobs`].
pub struct FsBlobStore {
    root: PathBuf,
    bucket: String,
    bucket_ok: bool,
    public_base_url: Arc<str>,
    presign_key: Arc<Zeroizing<[u8; 32]>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for FsBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBlobStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    stamp: String,
    etag: String,
    content_type: Option<String>,
}

/// S3's bucket naming rules (the subset that matters for a directory name).
fn valid_bucket(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

fn check_blob_key(key: &str) -> PortResult<()> {
    check_key(key)?;
    if key
        .split('/')
        .any(|s| s.starts_with(RESERVED_PREFIX) || s.len() > MAX_SEGMENT_BYTES)
    {
        return Err(PortError::Invalid("blob key not allowed".into()));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> PortResult<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    let bad = prefix.starts_with('/')
        || prefix.chars().any(|c| c.is_control() || c == '\\')
        || prefix.len() > 1024;
    let mut segments: Vec<&str> = prefix.split('/').collect();
    segments.pop(); // the last segment may be partial or empty
    let bad_dir = segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.starts_with(RESERVED_PREFIX));
    if bad || bad_dir {
        return Err(PortError::Invalid("blob prefix not allowed".into()));
    }
    Ok(())
}

/// True for errors meaning "no object here": missing, or a path component is a file.
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// True for errors meaning the key's path collides with another key's path.
fn is_conflict(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::AlreadyExists
            | io::ErrorKind::DirectoryNotEmpty
    )
}

fn conflict() -> PortError {
    PortError::Invalid(
        "blob key collides with another key's path (embedded store: a key cannot also be a prefix directory)"
            .into(),
    )
}

fn stamp(md: &fs::Metadata) -> String {
    format!(
        "{}:{}:{}:{}.{}",
        md.dev(),
        md.ino(),
        md.size(),
        md.mtime(),
        md.mtime_nsec()
    )
}

fn sha256_hex_of(file: &mut File) -> io::Result<String> {
    file.rewind()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    file.rewind()?;
    Ok(hex::encode(hasher.finalize()))
}

fn check_content_type(content_type: Option<&str>) -> PortResult<()> {
    if content_type
        .is_some_and(|ct| ct.is_empty() || ct.len() > 255 || ct.chars().any(|c| c.is_control()))
    {
        return Err(PortError::Invalid("content type not allowed".into()));
    }
    Ok(())
}

/// Moves a written, fsynced temp file into place as `path` and writes its sidecar. The temp
/// file is removed when the move fails.
fn commit_temp(tmp: &Path, path: &Path, meta_path: &Path, sidecar: &Sidecar) -> PortResult<()> {
    let dir = path.parent().expect("key path has a parent");
    let meta_dir = meta_path.parent().expect("meta path has a parent");
    let finish = (|| {
        fs::rename(tmp, path).map_err(|e| {
            if is_conflict(&e) {
                conflict()
            } else {
                fsutil::io_err("rename blob", e)
            }
        })?;
        fsutil::sync_dir(dir).map_err(|e| fsutil::io_err("sync blob dir", e))?;
        // The body is in place; a failed sidecar only costs a recomputed etag.
        let meta_written = fs::create_dir_all(meta_dir).and_then(|()| {
            fsutil::write_atomic(
                meta_path,
                &serde_json::to_vec(sidecar).expect("sidecar serializes"),
                BLOB_FILE_MODE,
            )
        });
        if let Err(e) = meta_written {
            tracing::warn!(error = %e.kind(), "blob sidecar not written");
        }
        Ok(())
    })();
    if finish.is_err() {
        let _ = fs::remove_file(tmp);
    }
    finish
}

/// Creates a new temp file (mode 0600) in `dir`, creating `dir` first. A concurrent delete
/// may prune the directory in between: try again a few times.
fn create_temp_in(dir: &Path) -> PortResult<(PathBuf, File)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        fs::create_dir_all(dir).map_err(|e| {
            if is_conflict(&e) {
                conflict()
            } else {
                fsutil::io_err("create blob dir", e)
            }
        })?;
        let tmp = fsutil::temp_path(dir);
        match fsutil::create_new_with_mode(&tmp, BLOB_FILE_MODE) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if is_missing(&e) && attempt < 3 => continue,
            Err(e) => return Err(fsutil::io_err("create blob temp file", e)),
        }
    }
}

/// Removes a temp file when dropped before [`TempFile::keep`] (an upload refused, failed, or
/// abandoned by a client that went away mid-body).
struct TempFile(Option<PathBuf>);

impl TempFile {
    /// The file is in place (renamed): nothing to remove any more.
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Why [`FsBlobStore::put_stream`] stored nothing.
#[derive(Debug)]
pub enum StreamPutError {
    /// The body was longer than the range allows (reading stopped there).
    TooLarge,
    /// The body was shorter than the range allows.
    TooSmall,
    /// Reading the body failed (the client's upload broke off or was malformed).
    Body(io::Error),
    /// The store refused or failed (bad key, disk error).
    Store(PortError),
}

impl fmt::Display for StreamPutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamPutError::TooLarge => f.write_str("body larger than allowed"),
            StreamPutError::TooSmall => f.write_str("body smaller than allowed"),
            StreamPutError::Body(e) => write!(f, "reading the body failed: {}", e.kind()),
            StreamPutError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StreamPutError {}

impl From<PortError> for StreamPutError {
    fn from(e: PortError) -> Self {
        StreamPutError::Store(e)
    }
}

impl FsBlobStore {
    pub(crate) fn new(
        blobs_dir: PathBuf,
        bucket: &str,
        public_base_url: Arc<str>,
        presign_key: Arc<Zeroizing<[u8; 32]>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let bucket_ok = valid_bucket(bucket);
        let root = if bucket_ok {
            blobs_dir.join(bucket)
        } else {
            blobs_dir
        };
        Self {
            root,
            bucket: bucket.to_owned(),
            bucket_ok,
            public_base_url,
            presign_key,
            clock,
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The directory holding this bucket's objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores what `body` yields under `key` when its length is within `size`, streaming it
    /// to a temp file in the key's directory (memory stays flat in the body's length), then
    /// renaming it into place like [`BlobStore::put`]. Reading stops at the first byte past
    /// the range's end. When the body is too long, too short or breaks off, nothing is stored
    /// and an existing object under `key` stays as it was.
    ///
    /// The local host serves presigned POST uploads with this.
    pub async fn put_stream<R>(
        &self,
        key: &str,
        mut body: R,
        content_type: Option<&str>,
        size: RangeInclusive<u64>,
    ) -> Result<BlobMeta, StreamPutError>
    where
        R: AsyncRead + Unpin + Send,
    {
        // Dropping `upload` on any early return removes its temp file.
        let mut upload = self.start_upload(key, content_type).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buf).await.map_err(StreamPutError::Body)?;
            if n == 0 {
                break;
            }
            if upload.total + n as u64 > *size.end() {
                return Err(StreamPutError::TooLarge);
            }
            upload.write_slice(&buf[..n]).await?;
        }
        if upload.total < *size.start() {
            return Err(StreamPutError::TooSmall);
        }
        let meta = upload.finish_inner().await?;
        tracing::debug!(bucket = %self.bucket, size = meta.size, "blob put (streamed)");
        Ok(meta)
    }

    /// Checks the key and content type and opens the upload's temp file in the key's
    /// directory (creating the directory).
    async fn start_upload(&self, key: &str, content_type: Option<&str>) -> PortResult<FsUpload> {
        self.check_bucket()?;
        check_blob_key(key)?;
        check_content_type(content_type)?;
        let (path, meta_path) = self.paths(key);
        let dir = path.parent().expect("key path has a parent").to_path_buf();
        let (tmp, file) = self.blocking(move |_| create_temp_in(&dir)).await?;
        Ok(FsUpload {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            root: self.root.clone(),
            path,
            meta_path,
            content_type: content_type.map(str::to_owned),
            file: Some(tokio::fs::File::from_std(file)),
            tmp: tmp.clone(),
            temp: TempFile(Some(tmp)),
            hasher: Sha256::new(),
            total: 0,
            broken: false,
        })
    }

    fn check_bucket(&self) -> PortResult<()> {
        if self.bucket_ok {
            Ok(())
        } else {
            Err(PortError::Invalid(
                "bucket names are 3 to 63 characters of a-z 0-9 . -".into(),
            ))
        }
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        (self.root.join(key), self.root.join(META_DIR).join(key))
    }

    async fn blocking<R, F>(&self, f: F) -> PortResult<R>
    where
        F: FnOnce(Layout) -> PortResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let layout = Layout {
            root: self.root.clone(),
        };
        tokio::task::spawn_blocking(move || f(layout))
            .await
            .map_err(|e| PortError::Backend(format!("blob task failed: {e}")))?
    }
}

/// A streaming upload into the file store: the body goes to a temp file in the key's
/// directory, renamed into place by `finish` (see the module documentation).
struct FsUpload {
    bucket: String,
    key: String,
    root: PathBuf,
    path: PathBuf,
    meta_path: PathBuf,
    content_type: Option<String>,
    /// `None` once finished or aborted.
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    /// Removes the temp file when the upload is dropped unfinished.
    temp: TempFile,
    hasher: Sha256,
    total: u64,
    /// A write failed or was cancelled: the upload can only be aborted.
    broken: bool,
}

fn broken_upload() -> PortError {
    PortError::Invalid("upload failed earlier; it can only be aborted".into())
}

impl FsUpload {
    async fn write_slice(&mut self, bytes: &[u8]) -> PortResult<()> {
        if self.broken {
            return Err(broken_upload());
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let file = self.file.as_mut().ok_or_else(broken_upload)?;
        // Broken until the write is done: a write that fails or is cancelled midway leaves
        // the file and the hash out of step.
        self.broken = true;
        file.write_all(bytes)
            .await
            .map_err(|e| fsutil::io_err("write blob", e))?;
        self.hasher.update(bytes);
        self.total += bytes.len() as u64;
        self.broken = false;
        Ok(())
    }

    /// Fsyncs the temp file and moves it into place with its sidecar, as `put` does.
    async fn finish_inner(&mut self) -> PortResult<BlobMeta> {
        if self.broken {
            return Err(broken_upload());
        }
        let mut file = self.file.take().ok_or_else(broken_upload)?;
        let write_err = |e: io::Error| fsutil::io_err("write blob", e);
        file.flush().await.map_err(write_err)?;
        file.sync_all().await.map_err(write_err)?;
        let md = file.metadata().await.map_err(write_err)?;
        drop(file);
        let sidecar = Sidecar {
            stamp: stamp(&md),
            etag: hex::encode(std::mem::take(&mut self.hasher).finalize()),
            content_type: self.content_type.clone(),
        };
        let meta = BlobMeta {
            key: self.key.clone(),
            size: self.total,
            etag: sidecar.etag.clone(),
            content_type: sidecar.content_type.clone(),
        };
        let (tmp, path, meta_path) = (self.tmp.clone(), self.path.clone(), self.meta_path.clone());
        tokio::task::spawn_blocking(move || commit_temp(&tmp, &path, &meta_path, &sidecar))
            .await
            .map_err(|e| PortError::Backend(format!("blob task failed: {e}")))??;
        self.temp.keep();
        Ok(meta)
    }
}

#[async_trait]
impl BlobUpload for FsUpload {
    async fn write(&mut self, chunk: Bytes) -> PortResult<()> {
        self.write_slice(&chunk).await
    }

    async fn finish(mut self: Box<Self>) -> PortResult<BlobMeta> {
        // On failure, dropping `self` removes the temp file.
        let meta = self.finish_inner().await?;
        tracing::debug!(bucket = %self.bucket, size = meta.size, "blob uploaded");
        Ok(meta)
    }

    async fn abort(mut self: Box<Self>) -> PortResult<()> {
        drop(self.file.take());
        let Some(tmp) = self.temp.0.take() else {
            return Ok(());
        };
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            match fs::remove_file(&tmp) {
                Ok(()) => {}
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(fsutil::io_err("remove upload temp file", e)),
            }
            // The upload may have created the key's directories: prune them if empty.
            if let Some(dir) = tmp.parent() {
                Layout::prune_empty_dirs(dir, &root);
            }
            Ok(())
        })
        .await
        .map_err(|e| PortError::Backend(format!("blob task failed: {e}")))??;
        tracing::debug!(bucket = %self.bucket, "blob upload aborted");
        Ok(())
    }
}

/// What the blocking closures need of the store.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn meta_path(&self, key: &str) -> PathBuf {
        self.root.join(META_DIR).join(key)
    }

    /// Metadata of an open data file: the sidecar if its stamp matches, else computed (and the
    /// sidecar written if there was none, e.g. for a file dropped in by hand).
    fn meta_of(&self, key: &str, file: &mut File) -> io::Result<BlobMeta> {
        let md = file.metadata()?;
        let st = stamp(&md);
        let meta_path = self.meta_path(key);
        let sidecar = match fs::read(&meta_path) {
            Ok(bytes) => Some(serde_json::from_slice::<Sidecar>(&bytes).ok()),
            Err(e) if is_missing(&e) => None,
            Err(e) => return Err(e),
        };
        if let Some(Some(s)) = &sidecar
            && s.stamp == st
        {
            return Ok(BlobMeta {
                key: key.to_owned(),
                size: md.size(),
                etag: s.etag.clone(),
                content_type: s.content_type.clone(),
            });
        }
        let etag = sha256_hex_of(file)?;
        if sidecar.is_none() {
            let repaired = Sidecar {
                stamp: st,
                etag: etag.clone(),
                content_type: None,
            };
            let written = meta_path
                .parent()
                .map(fs::create_dir_all)
                .unwrap_or(Ok(()))
                .and_then(|()| {
                    fsutil::write_atomic(
                        &meta_path,
                        &serde_json::to_vec(&repaired).expect("sidecar serializes"),
                        BLOB_FILE_MODE,
                    )
                });
            if let Err(e) = written {
                tracing::debug!(error = %e.kind(), "blob sidecar not repaired");
            }
        }
        Ok(BlobMeta {
            key: key.to_owned(),
            size: md.size(),
            etag,
            content_type: None,
        })
    }

    /// Opens the data file of `key`; `None` when there is no such object.
    fn open(&self, key: &str) -> io::Result<Option<File>> {
        match File::open(self.root.join(key)) {
            Ok(f) => {
                if f.metadata()?.is_file() {
                    Ok(Some(f))
                } else {
                    Ok(None)
                }
            }
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes empty directories from `dir` up to (not including) `stop`.
    fn prune_empty_dirs(dir: &Path, stop: &Path) {
        let mut d = dir.to_path_buf();
        while d.starts_with(stop) && d != stop {
            if fs::remove_dir(&d).is_err() {
                break;
            }
            if !d.pop() {
                break;
            }
        }
    }

    fn walk(
        &self,
        dir: &Path,
        key_prefix: &str,
        want: &ListWant<'_>,
        out: &mut Vec<BlobMeta>,
    ) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut names: Vec<(String, bool)> = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: cannot be a key
            };
            if name.starts_with(RESERVED_PREFIX) {
                continue;
            }
            let ft = entry.file_type()?;
            if ft.is_dir() {
                names.push((format!("{name}/"), true));
            } else if ft.is_file() {
                names.push((name, false));
            }
        }
        // A directory sorts as "name/", which makes the walk visit keys in byte order.
        names.sort_unstable();
        for (name, is_dir) in names {
            if out.len() >= want.limit {
                return Ok(());
            }
            let full = format!("{key_prefix}{name}");
            if is_dir {
                let relevant = full.starts_with(want.prefix) || want.prefix.starts_with(&full);
                let all_before = want
                    .start_after
                    .is_some_and(|sa| sa > full.as_str() && !sa.starts_with(&full));
                if relevant && !all_before {
                    self.walk(&dir.join(&name[..name.len() - 1]), &full, want, out)?;
                }
                continue;
            }
            if !full.starts_with(want.prefix)
                || want.start_after.is_some_and(|sa| full.as_str() <= sa)
                || check_blob_key(&full).is_err()
            {
                continue;
            }
            match File::open(dir.join(&name)) {
                Ok(mut f) => out.push(self.meta_of(&full, &mut f)?),
                Err(e) if is_missing(&e) => {} // deleted meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

struct ListWant<'a> {
    prefix: &'a str,
    start_after: Option<&'a str>,
    limit: usize,
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: Option<&str>,
    ) -> PortResult<BlobMeta> {
        self.check_bucket()?;
        check_blob_key(key)?;
        check_content_type(content_type)?;
        let (path, meta_path) = self.paths(key);
        let key = key.to_owned();
        let content_type = content_type.map(str::to_owned);
        let size = body.len();
        let meta = self
            .blocking(move |_layout| {
                let dir = path.parent().expect("key path has a parent");
                let etag = hex::encode(Sha256::digest(&body));
                // A concurrent delete may prune the directory between creating it and
                // creating the temp file: try again a few times.
                let mut attempt = 0;
                let (tmp, st) = loop {
                    attempt += 1;
                    fs::create_dir_all(dir).map_err(|e| {
                        if is_conflict(&e) {
                            conflict()
                        } else {
                            fsutil::io_err("create blob dir", e)
                        }
                    })?;
                    let tmp = fsutil::temp_path(dir);
                    let written = (|| {
                        let mut f = fsutil::create_new_with_mode(&tmp, BLOB_FILE_MODE)?;
                        f.write_all(&body)?;
                        f.sync_all()?;
                        f.metadata()
                    })();
                    match written {
                        Ok(md) => break (tmp, stamp(&md)),
                        Err(e) => {
                            let _ = fs::remove_file(&tmp);
                            if is_missing(&e) && attempt < 3 {
                                continue;
                            }
                            return Err(fsutil::io_err("write blob", e));
                        }
                    }
                };
                let sidecar = Sidecar {
                    stamp: st,
                    etag: etag.clone(),
                    content_type: content_type.clone(),
                };
                commit_temp(&tmp, &path, &meta_path, &sidecar)?;
                Ok(BlobMeta {
                    key,
                    size: size as u64,
                    etag,
                    content_type,
                })
            })
            .await?;
        tracing::debug!(bucket = %self.bucket, size, "blob put");
        Ok(meta)
    }

    async fn get(&self, key: &str) -> PortResult<(BlobMeta, BlobBody)> {
        self.check_bucket()?;
        check_blob_key(key)?;
        let key = key.to_owned();
        let (meta, file) = self
            .blocking(move |layout| {
                let mut file = layout
                    .open(&key)
                    .map_err(|e| fsutil::io_err("open blob", e))?
                    .ok_or(PortError::NotFound)?;
                let meta = layout
                    .meta_of(&key, &mut file)
                    .map_err(|e| fsutil::io_err("read blob metadata", e))?;
                Ok((meta, file))
            })
            .await?;
        tracing::debug!(bucket = %self.bucket, size = meta.size, "blob get");
        let body: BlobBody = Box::pin(tokio::fs::File::from_std(file));
        Ok((meta, body))
    }

    async fn get_version(&self, key: &str, _version: &str) -> PortResult<(BlobMeta, BlobBody)> {
        check_blob_key(key)?;
        Err(PortError::Invalid(
            "the embedded file store keeps one version per object".into(),
        ))
    }

    async fn head(&self, key: &str) -> PortResult<Option<BlobMeta>> {
        self.check_bucket()?;
        check_blob_key(key)?;
        let key = key.to_owned();
        self.blocking(move |layout| {
            let Some(mut file) = layout
                .open(&key)
                .map_err(|e| fsutil::io_err("open blob", e))?
            else {
                return Ok(None);
            };
            layout
                .meta_of(&key, &mut file)
                .map(Some)
                .map_err(|e| fsutil::io_err("read blob metadata", e))
        })
        .await
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        self.check_bucket()?;
        check_blob_key(key)?;
        let (path, meta_path) = self.paths(key);
        self.blocking(move |layout| {
            for p in [&path, &meta_path] {
                match fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if is_missing(&e) || e.kind() == io::ErrorKind::IsADirectory => {}
                    Err(e) => return Err(fsutil::io_err("delete blob", e)),
                }
            }
            let meta_root = layout.root.join(META_DIR);
            if let Some(d) = path.parent() {
                Layout::prune_empty_dirs(d, &layout.root);
            }
            if let Some(d) = meta_path.parent() {
                Layout::prune_empty_dirs(d, &meta_root);
            }
            Ok(())
        })
        .await?;
        tracing::debug!(bucket = %self.bucket, "blob deleted");
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> PortResult<Vec<BlobMeta>> {
        self.check_bucket()?;
        check_prefix(prefix)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        let out = self
            .blocking(move |layout| {
                let dir_part = match prefix.rfind('/') {
                    Some(i) => &prefix[..=i],
                    None => "",
                };
                let want = ListWant {
                    prefix: &prefix,
                    start_after: start_after.as_deref(),
                    limit,
                };
                let mut out = Vec::new();
                layout
                    .walk(&layout.root.join(dir_part), dir_part, &want, &mut out)
                    .map_err(|e| fsutil::io_err("list blobs", e))?;
                Ok(out)
            })
            .await?;
        tracing::debug!(bucket = %self.bucket, count = out.len(), "blobs listed");
        Ok(out)
    }

    async fn presign(
        &self,
        key: &str,
        method: PresignMethod,
        expires_in: Duration,
    ) -> PortResult<Presigned> {
        self.check_bucket()?;
        check_blob_key(key)?;
        presign::check_expiry_window(expires_in)?;
        let secs = expires_in.as_secs() + u64::from(expires_in.subsec_nanos() > 0);
        let expires = self.clock.now().as_second().saturating_add(secs as i64);
        let query = presign::signed_query(&self.presign_key, method, &self.bucket, key, expires);
        let url = format!(
            "{}/_blobs/{}/{}?{query}",
            self.public_base_url,
            self.bucket,
            presign::encode_key_path(key)
        );
        tracing::debug!(bucket = %self.bucket, method = presign::method_name(method), "blob url presigned");
        Ok(Presigned {
            url,
            method,
            headers: Vec::new(),
        })
    }

    async fn presign_post(&self, policy: &UploadPolicy) -> PortResult<PresignedPost> {
        self.check_bucket()?;
        policy.check()?;
        check_blob_key(&policy.key)?;
        let expires_at = policy.expires_at(self.clock.now());
        let fields = presign::post_fields(
            &self.presign_key,
            &self.bucket,
            policy,
            expires_at.as_second(),
        );
        tracing::debug!(bucket = %self.bucket, max = policy.max_bytes, "blob post presigned");
        Ok(PresignedPost {
            url: format!("{}/_blobs/{}", self.public_base_url, self.bucket),
            fields,
            expires_at,
        })
    }

    async fn upload(
        &self,
        key: &str,
        content_type: Option<&str>,
    ) -> PortResult<Box<dyn BlobUpload>> {
        Ok(Box::new(self.start_upload(key, content_type).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["uploads", "madoguchi-dev", "a.b-c", "abc"] {
            assert!(valid_bucket(ok), "{ok}");
        }
        for bad in ["ab", "Uploads", "-abc", "abc-", "a..b", "a/b", "", ".."] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn reserved_names_are_refused_as_keys_and_prefixes() {
        assert!(check_blob_key(".madoguchi-meta/x").is_err());
        assert!(check_blob_key("a/.madoguchi-tmp-1").is_err());
        assert!(check_blob_key("a/.hidden").is_ok());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("a/b").is_ok());
        assert!(check_prefix("a/").is_ok());
        assert!(check_prefix("a/..").is_ok()); // a partial last segment is only a filter
        assert!(check_prefix("../a").is_err());
        assert!(check_prefix("/a").is_err());
        assert!(check_prefix("a//b").is_err());
    }
}

#[cfg(test)]
mod stream_tests {
    use std::time::Duration;

    use madoguchi_ports::FixedClock;

    use super::*;

    fn store(dir: &Path) -> FsBlobStore {
        FsBlobStore::new(
            dir.to_path_buf(),
            "uploads",
            Arc::from("http://127.0.0.1:9"),
            Arc::new(Zeroizing::new([1u8; 32])),
            Arc::new(FixedClock::new(
                jiff::Timestamp::from_second(1_000).unwrap(),
            )),
        )
    }

    fn leftovers(root: &Path) -> Vec<String> {
        fn walk(d: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(d).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains("tmp") {
                    out.push(name.clone());
                }
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(root, &mut out);
        out
    }

    #[tokio::test]
    async fn a_stream_within_the_range_is_stored_like_a_put() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let meta = s
            .put_stream(
                "131016/a.pdf",
                &body[..],
                Some("application/pdf"),
                1..=200_000,
            )
            .await
            .unwrap();
        assert_eq!(meta.size, 200_000);
        let put = s
            .put("131016/b.pdf", Bytes::from(body.clone()), None)
            .await
            .unwrap();
        assert_eq!(meta.etag, put.etag, "same etag as a put of the same bytes");
        let head = s.head("131016/a.pdf").await.unwrap().unwrap();
        assert_eq!(head, meta);
        assert!(leftovers(s.root()).is_empty());
    }

    #[tokio::test]
    async fn too_long_too_short_or_broken_bodies_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.put("k/old.txt", Bytes::from_static(b"old"), None)
            .await
            .unwrap();
        let r = s
            .put_stream("k/old.txt", &b"0123456789A"[..], None, 1..=10)
            .await;
        assert!(matches!(r, Err(StreamPutError::TooLarge)), "{r:?}");
        let r = s.put_stream("k/old.txt", &b""[..], None, 1..=10).await;
        assert!(matches!(r, Err(StreamPutError::TooSmall)), "{r:?}");
        let r = s.put_stream("k/old.txt", Broken(false), None, 0..=10).await;
        assert!(matches!(r, Err(StreamPutError::Body(_))), "{r:?}");
        let r = s.put_stream("k/new.txt", &b"x"[..], None, 2..=10).await;
        assert!(matches!(r, Err(StreamPutError::TooSmall)), "{r:?}");
        // Exactly at the bounds is fine.
        s.put_stream("k/ten.txt", &b"0123456789"[..], None, 10..=10)
            .await
            .unwrap();
        assert_eq!(
            s.head("k/old.txt").await.unwrap().unwrap().size,
            3,
            "the old object is untouched"
        );
        assert!(s.head("k/new.txt").await.unwrap().is_none());
        assert!(leftovers(s.root()).is_empty(), "{:?}", leftovers(s.root()));
        let r = s.put_stream("../x", &b"x"[..], None, 0..=10).await;
        assert!(matches!(
            r,
            Err(StreamPutError::Store(PortError::Invalid(_)))
        ));
    }

    /// Five bytes, then the connection breaks.
    struct Broken(bool);

    impl AsyncRead for Broken {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if self.0 {
                return std::task::Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            self.0 = true;
            buf.put_slice(b"01234");
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn presign_post_signs_a_form_for_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let policy = UploadPolicy::new("131016/a.pdf", 1, 10, Duration::from_secs(30));
        let post = s.presign_post(&policy).await.unwrap();
        assert_eq!(post.url, "http://127.0.0.1:9/_blobs/uploads");
        assert_eq!(post.expires_at.as_second(), 1_030);
        assert_eq!(post.field("key"), Some("131016/a.pdf"));
        let v = crate::PresignVerifier::new(s.presign_key.clone());
        let grant = v
            .verify_post_form("uploads", &post.fields, post.expires_at)
            .unwrap();
        assert_eq!((grant.min_bytes, grant.max_bytes), (1, 10));
        let bad = UploadPolicy::new(".madoguchi-meta/x", 1, 10, Duration::from_secs(30));
        assert!(s.presign_post(&bad).await.is_err());
    }
}
