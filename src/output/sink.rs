//! Writing finished outputs to their expanded locations, atomically.
//!
//! Local files (plain absolute paths, paths relative to the base directory, `file://` URLs)
//! are written with std::fs rather than object_store's `LocalFileSystem`: the latter stages
//! uploads as `<path>#<n>` with a fresh `n` per attempt, so a crash mid-write leaves a stray
//! file that no retry ever cleans up. Here the staging name is deterministic
//! (`.<file>.partial` beside the target), so the retry of the same output reuses and renames
//! it; readers never see a partial file because the final name appears only by `rename`.
//! Two concurrent writers of the same output would share that staging file; the engine
//! writes each output from one worker at a time.
//!
//! `s3://` has no real client yet: see [`s3_standin_path`].

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::OutputError;

/// Directory under the base directory that stands in for S3 buckets.
const S3_STANDIN_DIR: &str = "s3";

/// Where a location resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file on the local file system.
    Local(PathBuf),
}

/// Resolves output locations and writes to them. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Sinks {
    base_dir: PathBuf,
}

impl Sinks {
    /// `base_dir` anchors relative paths and holds the embedded `s3/` stand-in.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Sinks {
            base_dir: base_dir.into(),
        }
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Maps an expanded output location to where it is stored, without touching storage.
    ///
    /// Accepts an absolute path, a path relative to the base directory, `file:///abs/path`
    /// and `s3://bucket/key`. The location must name a file (no trailing `/`).
    pub fn resolve(&self, location: &str) -> Result<Target, OutputError> {
        let unsupported = |reason: &str| OutputError::UnsupportedLocation {
            location: location.to_string(),
            reason: reason.to_string(),
        };
        if location.trim().is_empty() {
            return Err(unsupported("the location is empty"));
        }
        let last = location.rsplit('/').next().unwrap_or_default();
        if last.is_empty() || last == "." || last == ".." {
            return Err(unsupported("the location must end with a file name"));
        }
        let Some((scheme, rest)) = location.split_once("://") else {
            return Ok(Target::Local(self.base_dir.join(location)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let url = url::Url::parse(location)
                    .map_err(|e| unsupported(&format!("not a valid file URL: {e}")))?;
                let path = url.to_file_path().map_err(|()| {
                    unsupported("a file URL must be file:///absolute/path on this machine")
                })?;
                Ok(Target::Local(path))
            }
            "s3" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                s3_standin_path(&self.base_dir, bucket, key)
                    .map(Target::Local)
                    .map_err(|reason| unsupported(&reason))
            }
            _ => Err(unsupported(
                "only local paths, file:// URLs and s3:// URLs are supported",
            )),
        }
    }

    /// Stores `bytes` at `location`, replacing any existing file, creating parent
    /// directories; either the whole new content is visible under the final name or none.
    pub async fn put(&self, location: &str, bytes: Vec<u8>) -> Result<(), OutputError> {
        let Target::Local(path) = self.resolve(location)?;
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| OutputError::Task(e.to_string()))?
    }

    /// Whether a file already exists at `location` (for `overwrite` / `skipExisting`).
    ///
    /// A missing parent, a parent that is a regular file, or a directory at the location
    /// all count as "no file": a later `put` reports the real problem.
    pub async fn exists(&self, location: &str) -> Result<bool, OutputError> {
        let Target::Local(path) = self.resolve(location)?;
        tokio::task::spawn_blocking(move || match fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                Ok(false)
            }
            Err(e) => Err(OutputError::io("check", path, e)),
        })
        .await
        .map_err(|e| OutputError::Task(e.to_string()))?
    }
}

/// The embedded stand-in for S3 until a real client is configured: `s3://bucket/key` is
/// stored at `<base_dir>/s3/<bucket>/<key>`. This is the only place that knows it.
///
/// `.` and `..` segments are refused so a key cannot escape its bucket directory.
fn s3_standin_path(base_dir: &Path, bucket: &str, key: &str) -> Result<PathBuf, String> {
    let bucket_ok = !bucket.is_empty()
        && bucket != "."
        && bucket != ".."
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !bucket_ok {
        return Err(format!(
            "{bucket:?} is not a bucket name (letters, digits, '.', '-', '_')"
        ));
    }
    if key.is_empty() {
        return Err("an s3:// location needs a key after the bucket".to_string());
    }
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("'.' and '..' segments are not allowed in s3:// keys".to_string());
    }
    Ok(base_dir.join(S3_STANDIN_DIR).join(bucket).join(key))
}

/// Writes to `.<name>.partial` beside `path`, syncs it, renames it over `path`, then syncs
/// the directory so the rename itself survives a power loss.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        let error = std::io::Error::new(ErrorKind::InvalidInput, "no file name");
        return Err(OutputError::io("write", path, error));
    };
    fs::create_dir_all(parent).map_err(|e| OutputError::io("create directory", parent, e))?;
    let mut staging_name = std::ffi::OsString::from(".");
    staging_name.push(name);
    staging_name.push(".partial");
    let staging = parent.join(staging_name);

    let written = (|| {
        let mut file =
            File::create(&staging).map_err(|e| OutputError::io("create", &staging, e))?;
        file.write_all(bytes)
            .map_err(|e| OutputError::io("write", &staging, e))?;
        file.sync_all()
            .map_err(|e| OutputError::io("sync", &staging, e))?;
        fs::rename(&staging, path).map_err(|e| OutputError::io("replace", path, e))
    })();
    if written.is_err() {
        // Best effort: a leftover is harmless, the next attempt truncates and reuses it.
        let _ = fs::remove_file(&staging);
    }
    written?;
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| OutputError::io("sync directory", parent, e))
}

#[cfg(test)]
mod tests;
