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
//!
//! `gs://` and `az://` go to Google Cloud Storage and Azure Blob Storage (or their
//! emulators) when configured ([`super::GcsConfig`], [`super::AzureConfig`]); they have no
//! local stand-in, so an unconfigured one is refused at resolve time.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::PutPayload;

use super::cloud::{AzureConfig, CloudStores, GcsConfig, StoreConfig};
use super::s3::{S3Config, S3Stores};
use super::OutputError;

/// Most entries [`Sinks::preflight`] lists before it checks outputs one by one instead.
pub const LIST_LIMIT: usize = 100_000;

/// Directory under the base directory that stands in for S3 buckets.
const S3_STANDIN_DIR: &str = "s3";

/// Where a location resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file on the local file system.
    Local(PathBuf),
    /// An object on the configured S3 endpoint.
    S3 { bucket: String, key: String },
    /// An object on the configured Google Cloud Storage endpoint.
    Gcs { bucket: String, key: String },
    /// A blob on the configured Azure Blob Storage account.
    Azure { container: String, key: String },
}

impl Target {
    /// The `scheme://bucket/` prefix this target's keys are relative to, or `None` for
    /// local files.
    fn object(&self) -> Option<(&'static str, &str, &str)> {
        match self {
            Target::Local(_) => None,
            Target::S3 { bucket, key } => Some(("s3", bucket, key)),
            Target::Gcs { bucket, key } => Some(("gs", bucket, key)),
            Target::Azure { container, key } => Some(("az", container, key)),
        }
    }
}

/// Resolves output locations and writes to them. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Sinks {
    base_dir: PathBuf,
    s3: Option<Arc<S3Stores>>,
    gcs: Option<Arc<CloudStores>>,
    azure: Option<Arc<CloudStores>>,
}

impl Sinks {
    /// `base_dir` anchors relative paths and holds the embedded `s3/` stand-in; `s3://`
    /// locations use the stand-in.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Sinks {
            base_dir: base_dir.into(),
            s3: None,
            gcs: None,
            azure: None,
        }
    }

    /// Like [`Sinks::new`], but `s3://` locations go to the S3 endpoint of `s3` when given.
    pub fn with_s3(base_dir: impl Into<PathBuf>, s3: Option<S3Config>) -> Self {
        Sinks {
            base_dir: base_dir.into(),
            s3: s3.map(|c| Arc::new(S3Stores::new(c))),
            gcs: None,
            azure: None,
        }
    }

    /// Adds (or, with `None`, removes) the Google Cloud Storage settings for `gs://`.
    pub fn with_gcs(mut self, gcs: Option<GcsConfig>) -> Self {
        self.gcs = gcs.map(|c| Arc::new(CloudStores::new(StoreConfig::Gcs(c))));
        self
    }

    /// Adds (or, with `None`, removes) the Azure Blob Storage settings for `az://`.
    pub fn with_azure(mut self, azure: Option<AzureConfig>) -> Self {
        self.azure = azure.map(|c| Arc::new(CloudStores::new(StoreConfig::Azure(c))));
        self
    }

    /// [`Sinks::with_s3`] with the S3 settings of the environment ([`S3Config::from_env`]):
    /// real S3 when an endpoint or credentials are set, the local stand-in otherwise.
    /// `gs://` and `az://` are usable when [`GcsConfig::from_env`] /
    /// [`AzureConfig::from_env`] find settings.
    pub fn from_env(base_dir: impl Into<PathBuf>) -> Result<Self, OutputError> {
        Ok(Self::with_s3(base_dir, S3Config::from_env()?)
            .with_gcs(GcsConfig::from_env()?)
            .with_azure(AzureConfig::from_env()?))
    }

    /// These sinks with `s3://` signed by one request's own credentials (Batch v2
    /// `delivery.s3.accessKey`/`secretAccessKey`, and `region` when given), on the
    /// configured endpoint (AWS without one). Everything else is shared with `self`.
    pub fn with_request_s3_credentials(
        &self,
        access_key: &str,
        secret_access_key: &str,
        region: Option<&str>,
    ) -> Sinks {
        let mut config = self.s3_config().cloned().unwrap_or_else(|| S3Config {
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: false,
            virtual_hosted: false,
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(60),
        });
        config.access_key_id = Some(access_key.to_string());
        config.secret_access_key = Some(secret_access_key.to_string());
        // The server's session token belongs to the server's keys, not to these.
        config.session_token = None;
        if let Some(region) = region {
            config.region = region.to_string();
        }
        Sinks {
            s3: Some(Arc::new(S3Stores::new(config))),
            ..self.clone()
        }
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
    /// `s3://bucket/key`, `gs://bucket/key` and `az://container/key`. The location must name a file (no trailing `/`), and no
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
            "gs" | "az" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                // The same bucket and key rules as the S3 stand-in: no `.`/`..` segments.
                s3_standin_path(&self.base_dir, bucket, key).map_err(|r| unsupported(&r))?;
                ObjectPath::parse(key)
                    .map_err(|e| unsupported(&format!("not a valid object key: {e}")))?;
                let (bucket, key) = (bucket.to_string(), key.to_string());
                if scheme.eq_ignore_ascii_case("gs") {
                    if self.gcs.is_none() {
                        return Err(unsupported(
                            "gs:// needs TESSERA_GCS_ENDPOINT or Google credentials \
                             (GOOGLE_SERVICE_ACCOUNT, GOOGLE_SERVICE_ACCOUNT_KEY, \
                             GOOGLE_APPLICATION_CREDENTIALS)",
                        ));
                    }
                    Ok(Target::Gcs { bucket, key })
                } else {
                    if self.azure.is_none() {
                        return Err(unsupported(
                            "az:// needs AZURE_STORAGE_ACCOUNT_NAME with a key or SAS, or \
                             TESSERA_AZURE_USE_EMULATOR=true",
                        ));
                    }
                    Ok(Target::Azure {
                        container: bucket,
                        key,
                    })
                }
            }
            _ => Err(unsupported(
                "only local paths, file://, s3://, gs:// and az:// URLs are supported",
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
            target => {
                let (store, key) = self.object_store(&target)?;
                store
                    .put(&key, PutPayload::from(bytes))
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
            target => {
                let (store, key) = self.object_store(&target)?;
                let result = store
                    .get(&key)
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

    /// Up to `limit` existing files under the folder `prefix` (a location without a file
    /// name: `s3://b/run`, `gs://b`, `/abs/dir`, `rel/dir`, or empty for the base
    /// directory), recursively, as locations written the way `prefix` is, sorted.
    ///
    /// For the existence checks of §10.2: one listing replaces a HEAD per output. A result
    /// of exactly `limit` entries may be cut short; a missing folder or bucket prefix lists
    /// nothing.
    pub async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, OutputError> {
        let prefix = if prefix.ends_with("://") {
            prefix
        } else {
            prefix.trim_end_matches('/')
        };
        // Resolving a file inside the folder applies every location rule (schemes, `..`,
        // bucket names, configured stores) without duplicating them.
        let probe = if prefix.is_empty() {
            "_".to_string()
        } else {
            format!("{prefix}/_")
        };
        let join = |rel: &str| {
            // `file://` + `/rel` is `file:///rel`, as the expanded locations write it.
            if prefix.is_empty() {
                rel.to_string()
            } else {
                format!("{prefix}/{rel}")
            }
        };
        let target = self.resolve(&probe)?;
        let mut found = match target.object() {
            None => {
                let Target::Local(file) = target else {
                    return Ok(Vec::new());
                };
                let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
                let files = tokio::task::spawn_blocking(move || list_dir(&dir, limit))
                    .await
                    .map_err(|e| OutputError::Task(e.to_string()))??;
                files.iter().map(|rel| join(rel)).collect::<Vec<_>>()
            }
            Some((_, _, key)) => {
                let folder = key.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
                let (store, _) = self.object_store(&target)?;
                let listing_prefix = (!folder.is_empty()).then(|| ObjectPath::from(folder));
                let metas: Vec<_> = store
                    .list(listing_prefix.as_ref())
                    .take(limit)
                    .try_collect()
                    .await
                    .map_err(|e| store_error("list", prefix, e))?;
                let strip = if folder.is_empty() {
                    String::new()
                } else {
                    format!("{folder}/")
                };
                metas
                    .into_iter()
                    .filter_map(|m| {
                        let key = m.location.to_string();
                        key.strip_prefix(&strip).map(join)
                    })
                    .collect()
            }
        };
        found.sort();
        Ok(found)
    }

    /// The analysis-time check of §10.2 for a whole request: `tiles` holds each tile's
    /// expanded output locations. Returns how many tiles will be skipped, or why the
    /// request must fail (existing outputs without `overwrite`, or too many files to
    /// check with a path that is not request-unique).
    ///
    /// One listing of [`super::listing_prefix`] replaces a check per file; when that folder
    /// holds more than [`LIST_LIMIT`] entries the outputs are checked one by one instead
    /// (at most [`super::EXISTENCE_CHECK_LIMIT`] of them).
    pub async fn preflight(
        &self,
        template: &str,
        options: &super::OutputOptions,
        tiles: &[Vec<String>],
    ) -> Result<usize, OutputError> {
        let files = tiles.iter().map(|t| t.len() as u64).sum();
        if !super::existence_check_needed(template, options, files)? {
            return Ok(0);
        }
        let mut listed: std::collections::HashSet<String> = self
            .list(super::listing_prefix(template), LIST_LIMIT)
            .await?
            .into_iter()
            .collect();
        if listed.len() >= LIST_LIMIT {
            listed.clear();
            for location in tiles.iter().flatten() {
                if self.exists(location).await? {
                    listed.insert(location.clone());
                }
            }
        }
        super::check_existing_tiles(tiles, &listed, options).map_err(OutputError::Exists)
    }

    /// The client and key of an object target (not for [`Target::Local`]).
    fn object_store(
        &self,
        target: &Target,
    ) -> Result<(Arc<dyn object_store::ObjectStore>, ObjectPath), OutputError> {
        let (store, key) = match target {
            Target::Local(path) => {
                return Err(OutputError::UnsupportedLocation {
                    location: path.display().to_string(),
                    reason: "a local file is not an object".into(),
                })
            }
            Target::S3 { bucket, key } => (self.s3_store(bucket)?, key),
            Target::Gcs { bucket, key } => (cloud(&self.gcs, "gs", bucket)?.bucket(bucket)?, key),
            Target::Azure { container, key } => {
                (cloud(&self.azure, "az", container)?.bucket(container)?, key)
            }
        };
        Ok((store, object_path(key)?))
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
            target => {
                let (store, key) = self.object_store(&target)?;
                return match store.head(&key).await {
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

fn cloud<'a>(
    stores: &'a Option<Arc<CloudStores>>,
    scheme: &str,
    bucket: &str,
) -> Result<&'a CloudStores, OutputError> {
    stores
        .as_deref()
        .ok_or_else(|| OutputError::UnsupportedLocation {
            location: format!("{scheme}://{bucket}"),
            reason: format!("no {scheme}:// store is configured"),
        })
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

/// Up to `limit` regular files under `dir`, recursively, as `/`-joined paths relative to
/// it; staging files (`.<name>.partial`) are not outputs and are left out. A missing `dir`
/// holds nothing.
fn list_dir(dir: &Path, limit: usize) -> Result<Vec<String>, OutputError> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = pending.pop() {
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                continue
            }
            Err(e) => return Err(OutputError::io("list", path, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| OutputError::io("list", &path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|e| OutputError::io("list", entry.path(), e))?;
            if kind.is_dir() {
                pending.push((entry.path(), child));
            } else if kind.is_file() && !(name.starts_with('.') && name.ends_with(".partial")) {
                if found.len() >= limit {
                    return Ok(found);
                }
                found.push(child);
            }
        }
    }
    Ok(found)
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
