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
//! `s3://` goes to a real S3 endpoint through object_store when one is configured
//! ([`super::S3Config`]); a PUT is atomic there (the object appears whole or not at all) and
//! object_store retries transient errors. Without configuration it goes to the local
//! stand-in of [`s3_standin_path`].

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::PutPayload;

use super::s3::{S3Config, S3Stores};
use super::OutputError;

/// Directory under the base directory that stands in for S3 buckets.
const S3_STANDIN_DIR: &str = "s3";

/// Where a location resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file on the local file system.
    Local(PathBuf),
    /// An object on the configured S3 endpoint.
    S3 { bucket: String, key: String },
}

/// Resolves output locations and writes to them. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Sinks {
    base_dir: PathBuf,
    s3: Option<Arc<S3Stores>>,
}

impl Sinks {
    /// `base_dir` anchors relative paths and holds the embedded `s3/` stand-in; `s3://`
    /// locations use the stand-in.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Sinks {
            base_dir: base_dir.into(),
            s3: None,
        }
    }

    /// Like [`Sinks::new`], but `s3://` locations go to the S3 endpoint of `s3` when given.
    pub fn with_s3(base_dir: impl Into<PathBuf>, s3: Option<S3Config>) -> Self {
        Sinks {
            base_dir: base_dir.into(),
            s3: s3.map(|c| Arc::new(S3Stores::new(c))),
        }
    }

    /// [`Sinks::with_s3`] with the S3 settings of the environment ([`S3Config::from_env`]):
    /// real S3 when an endpoint or credentials are set, the local stand-in otherwise.
    pub fn from_env(base_dir: impl Into<PathBuf>) -> Result<Self, OutputError> {
        Ok(Self::with_s3(base_dir, S3Config::from_env()?))
    }

    /// The S3 settings in use; `None` means `s3://` goes to the local stand-in.
    pub fn s3_config(&self) -> Option<&S3Config> {
        self.s3.as_deref().map(|s| &s.config)
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Maps an expanded output location to where it is stored, without touching storage.
    ///
    /// Accepts an absolute path, a path relative to the base directory, `file:///abs/path`
    /// and `s3://bucket/key`. The location must name a file (no trailing `/`), and no
    /// segment may be `.` or `..`: a relative path can never leave the base directory, and
    /// what the user wrote is what is written (URL parsing would silently fold `..`).
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
        let dotdot = || location.split(['/', '\\']).any(|s| s == "..");
        let Some((scheme, rest)) = location.split_once("://") else {
            if dotdot() {
                return Err(unsupported(
                    "'..' segments are not allowed in output locations",
                ));
            }
            return Ok(Target::Local(self.base_dir.join(location)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if dotdot() {
                    return Err(unsupported(
                        "'..' segments are not allowed in output locations",
                    ));
                }
                let url = url::Url::parse(location)
                    .map_err(|e| unsupported(&format!("not a valid file URL: {e}")))?;
                let path = url.to_file_path().map_err(|()| {
                    unsupported("a file URL must be file:///absolute/path on this machine")
                })?;
                Ok(Target::Local(path))
            }
            "s3" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                let standin =
                    s3_standin_path(&self.base_dir, bucket, key).map_err(|r| unsupported(&r))?;
                if self.s3.is_none() {
                    return Ok(Target::Local(standin));
                }
                ObjectPath::parse(key)
                    .map_err(|e| unsupported(&format!("not a valid S3 key: {e}")))?;
                Ok(Target::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
            _ => Err(unsupported(
                "only local paths, file:// URLs and s3:// URLs are supported",
            )),
        }
    }

    /// Stores `bytes` at `location`, replacing any existing file, creating parent
    /// directories; either the whole new content is visible under the final name or none.
    pub async fn put(&self, location: &str, bytes: Vec<u8>) -> Result<(), OutputError> {
        match self.resolve(location)? {
            Target::Local(path) => tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
                .await
                .map_err(|e| OutputError::Task(e.to_string()))?,
            Target::S3 { bucket, key } => {
                let store = self.s3_store(&bucket)?;
                store
                    .put(&object_path(&key)?, PutPayload::from(bytes))
                    .await
                    .map(|_| ())
                    .map_err(|e| store_error("write", location, e))
            }
        }
    }

    /// Reads a whole output back (tests, and tools that verify outputs).
    pub async fn get(&self, location: &str) -> Result<Vec<u8>, OutputError> {
        match self.resolve(location)? {
            Target::Local(path) => tokio::task::spawn_blocking(move || {
                fs::read(&path).map_err(|e| OutputError::io("read", path, e))
            })
            .await
            .map_err(|e| OutputError::Task(e.to_string()))?,
            Target::S3 { bucket, key } => {
                let store = self.s3_store(&bucket)?;
                let result = store
                    .get(&object_path(&key)?)
                    .await
                    .map_err(|e| store_error("read", location, e))?;
                let bytes = result
                    .bytes()
                    .await
                    .map_err(|e| store_error("read", location, e))?;
                Ok(bytes.to_vec())
            }
        }
    }

    /// The keys of all objects under `s3://bucket/prefix` on the configured endpoint, as
    /// `s3://` locations, sorted. Only for real S3 (the stand-in is a plain directory).
    pub async fn list_s3(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, OutputError> {
        let location = format!("s3://{bucket}/{prefix}");
        let store = self.s3_store(bucket)?;
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let metas: Vec<_> = store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| store_error("list", &location, e))?;
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| format!("s3://{bucket}/{}", m.location))
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn s3_store(&self, bucket: &str) -> Result<Arc<dyn object_store::ObjectStore>, OutputError> {
        match &self.s3 {
            Some(stores) => stores.bucket(bucket),
            None => Err(OutputError::UnsupportedLocation {
                location: format!("s3://{bucket}"),
                reason: "no S3 endpoint or credentials are configured".into(),
            }),
        }
    }

    /// Whether a file already exists at `location` (for `overwrite` / `skipExisting`).
    ///
    /// A missing parent, a parent that is a regular file, or a directory at the location
    /// all count as "no file": a later `put` reports the real problem.
    pub async fn exists(&self, location: &str) -> Result<bool, OutputError> {
        let path = match self.resolve(location)? {
            Target::Local(path) => path,
            Target::S3 { bucket, key } => {
                let store = self.s3_store(&bucket)?;
                return match store.head(&object_path(&key)?).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(store_error("check", location, e)),
                };
            }
        };
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

fn object_path(key: &str) -> Result<ObjectPath, OutputError> {
    ObjectPath::parse(key).map_err(|e| OutputError::UnsupportedLocation {
        location: key.to_string(),
        reason: format!("not a valid S3 key: {e}"),
    })
}

fn store_error(action: &'static str, location: &str, error: object_store::Error) -> OutputError {
    OutputError::Store {
        action,
        location: location.to_string(),
        error: error.to_string(),
    }
}

/// The embedded stand-in for S3 when no endpoint or credentials are configured: `s3://bucket/key` is
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
