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
//! - Names starting with `.madoguchi-` are the store's own (temp files, sidecars): listings
//!   skip them and keys may not use them. Because keys are paths, a key cannot also be a
//!   "directory" of other keys (`a` and `a/b` cannot both exist); such a put is `Invalid`.
//!   Each key segment is at most 255 bytes (the filesystem's name limit).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use madoguchi_ports::blob::check_key;
use madoguchi_ports::{
    BlobBody, BlobMeta, BlobStore, Clock, PortError, PortResult, PresignMethod, Presigned,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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
        if content_type
            .is_some_and(|ct| ct.is_empty() || ct.len() > 255 || ct.chars().any(|c| c.is_control()))
        {
            return Err(PortError::Invalid("content type not allowed".into()));
        }
        let (path, meta_path) = self.paths(key);
        let key = key.to_owned();
        let content_type = content_type.map(str::to_owned);
        let size = body.len();
        let meta = self
            .blocking(move |_layout| {
                let dir = path.parent().expect("key path has a parent");
                let meta_dir = meta_path.parent().expect("meta path has a parent");
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
                let finish = (|| {
                    fs::rename(&tmp, &path).map_err(|e| {
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
                            &meta_path,
                            &serde_json::to_vec(&sidecar).expect("sidecar serializes"),
                            BLOB_FILE_MODE,
                        )
                    });
                    if let Err(e) = meta_written {
                        tracing::warn!(error = %e.kind(), "blob sidecar not written");
                    }
                    Ok(())
                })();
                if finish.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                finish?;
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
