//! Writing finished outputs to their expanded locations, atomically, and only where the
//! client may write.
//!
//! Local files are written by `local` rather than object_store's `LocalFileSystem`: the
//! latter stages uploads as `<path>#<n>` with a fresh `n` per attempt, so a crash mid-write
//! leaves a stray file that no retry ever cleans up. Here the staging name is
//! deterministic (`.<file>.partial` beside the target), so the retry of the same output
//! replaces it; readers never see a partial file because the final name appears only by
//! `rename`. Two concurrent writers of the same output would share that staging name; the
//! engine writes each output from one worker at a time. Directories below the root are
//! opened one at a time without following symbolic links (`local`).
//!
//! [`Sinks::for_client`] confines a client (issue 12, rules in `confine`): relative paths
//! go under `<base>/clients/<clientId>/`, absolute paths and `file://` only under the
//! prefixes the operator allowed, buckets only where granted. Unconfined sinks (the
//! operator's own `tessera run`, tools, tests) write where they are told, relative paths
//! under the base directory.
//!
//! `s3://` goes to a real S3 endpoint through object_store when one is configured
//! ([`super::S3Config`]); a PUT is atomic there (the object appears whole or not at all) and
//! object_store retries transient errors. Without configuration it goes to the local
//! stand-in `<base>/s3/<bucket>/<key>`, built here and nowhere else.
//!
//! `gs://` and `az://` go to Google Cloud Storage and Azure Blob Storage (or their
//! emulators) when configured ([`super::GcsConfig`], [`super::AzureConfig`]); they have no
//! local stand-in, so an unconfigured one is refused at resolve time.

mod local;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::PutPayload;

use super::cloud::{AzureConfig, CloudStores, GcsConfig, StoreConfig};
use super::confine::{self, Location, Scheme, Scope};
use super::s3::{S3Config, S3Stores};
use super::OutputError;
pub use local::LocalTarget;

/// Most entries [`Sinks::preflight`] lists before it checks outputs one by one instead.
pub const LIST_LIMIT: usize = 100_000;

/// Directory under the base directory that stands in for S3 buckets.
const S3_STANDIN_DIR: &str = "s3";
/// Directory under the base directory that holds one folder per confined client.
pub const CLIENTS_DIR: &str = "clients";

/// Where a location resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file on the local file system.
    Local(LocalTarget),
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

/// The client a [`Sinks`] writes for, and where it may write.
#[derive(Debug, Clone)]
struct ClientScope {
    id: String,
    scope: Scope,
}

impl Sinks {
    /// These sinks, also allowed to write under `extra` (the bucket of a request that signs
    /// with its own keys; see `engine::outputs::with_own_bucket`). Unconfined sinks stay so.
    pub fn also_allowing(&self, extra: confine::Location) -> Sinks {
        let mut sinks = self.clone();
        if let Some(c) = &self.client {
            let mut scope = c.scope.clone();
            scope.allowed.push(extra);
            sinks.client = Some(Arc::new(ClientScope {
                id: c.id.clone(),
                scope,
            }));
        }
        sinks
    }
}

/// Resolves output locations and writes to them. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Sinks {
    base_dir: PathBuf,
    s3: Option<Arc<S3Stores>>,
    gcs: Option<Arc<CloudStores>>,
    azure: Option<Arc<CloudStores>>,
    /// `None`: unconfined (the operator's own runs).
    client: Option<Arc<ClientScope>>,
}

impl Sinks {
    /// `base_dir` anchors relative paths and holds the embedded `s3/` stand-in; `s3://`
    /// locations use the stand-in.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self::with_s3(base_dir, None)
    }

    /// Like [`Sinks::new`], but `s3://` locations go to the S3 endpoint of `s3` when given.
    pub fn with_s3(base_dir: impl Into<PathBuf>, s3: Option<S3Config>) -> Self {
        Sinks {
            base_dir: base_dir.into(),
            s3: s3.map(|c| Arc::new(S3Stores::new(c))),
            gcs: None,
            azure: None,
            client: None,
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

    /// These sinks confined to `client`: relative paths under
    /// `<base>/clients/<client>/`, everything else only under `scope`'s prefixes.
    pub fn for_client(mut self, client: &str, scope: Scope) -> Result<Self, OutputError> {
        confine::check_segment(client).map_err(|reason| OutputError::UnsupportedLocation {
            location: format!("{CLIENTS_DIR}/{client}"),
            reason: format!("the client id cannot name a folder: {reason}"),
        })?;
        self.client = Some(Arc::new(ClientScope {
            id: client.to_string(),
            scope,
        }));
        Ok(self)
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

    /// The folder relative paths resolve in: the client's own, or the base directory.
    pub fn relative_root(&self) -> PathBuf {
        match &self.client {
            Some(c) => self.base_dir.join(CLIENTS_DIR).join(&c.id),
            None => self.base_dir.clone(),
        }
    }

    /// Maps an expanded output location to where it is stored, without touching storage.
    ///
    /// Accepts a path relative to the client's folder (the base directory when
    /// unconfined), an absolute path, `file:///abs/path`, `s3://bucket/key`,
    /// `gs://bucket/key` and `az://container/key`, under the rules of `confine`: it names
    /// a file, every segment is one plain name, and a confined client stays in its scope.
    pub fn resolve(&self, location: &str) -> Result<Target, OutputError> {
        self.resolve_parsed(location, confine::parse_location(location))
    }

    /// [`Sinks::resolve`] for a folder (`s3://b/run`, `/abs/dir`, `rel/dir`, or empty for
    /// the root); a local folder resolves to a [`LocalTarget`] whose segments are all
    /// directories.
    fn resolve_folder(&self, prefix: &str) -> Result<Target, OutputError> {
        self.resolve_parsed(prefix, confine::parse_prefix(prefix))
    }

    fn resolve_parsed(
        &self,
        location: &str,
        parsed: Result<Location, String>,
    ) -> Result<Target, OutputError> {
        let unsupported = |reason: &str| OutputError::UnsupportedLocation {
            location: location.to_string(),
            reason: reason.to_string(),
        };
        let parsed = parsed.map_err(|r| unsupported(&r))?;
        if let Some(client) = &self.client {
            client
                .scope
                .check(&parsed)
                .map_err(|reason| OutputError::Refused {
                    location: location.to_string(),
                    reason,
                })?;
        }
        let local = |root: PathBuf, rel: Vec<String>, hidden: usize, shown_prefix: String| {
            Target::Local(LocalTarget {
                root,
                rel,
                hidden,
                shown_prefix,
            })
        };
        match parsed {
            Location::Relative(segments) => Ok(match &self.client {
                Some(c) => {
                    let mut rel = vec![CLIENTS_DIR.to_string(), c.id.clone()];
                    rel.extend(segments);
                    local(self.base_dir.clone(), rel, 2, String::new())
                }
                None => local(self.base_dir.clone(), segments, 0, String::new()),
            }),
            Location::Absolute(segments) => {
                // Confined: the allowed prefix is the root (the operator's, symlinks and
                // all); below it nothing is followed. Unconfined: the operator's own path,
                // so only the file name itself is opened without following.
                let keep = match &self.client {
                    Some(c) => c
                        .scope
                        .allowed
                        .iter()
                        .filter(|p| matches!(p, Location::Absolute(_)))
                        .map(|p| p.segments().len())
                        .filter(|&n| segments.len() >= n)
                        .max()
                        .unwrap_or(0),
                    None => segments.len().saturating_sub(1),
                };
                let mut root = PathBuf::from("/");
                root.extend(&segments[..keep]);
                let shown = format!("{}/", root.display()).replace("//", "/");
                Ok(local(root, segments[keep..].to_vec(), 0, shown))
            }
            Location::Object {
                scheme,
                bucket,
                key,
            } => {
                let joined = key.join("/");
                if !joined.is_empty() {
                    ObjectPath::parse(&joined)
                        .map_err(|e| unsupported(&format!("not a valid object key: {e}")))?;
                }
                match scheme {
                    Scheme::S3 if self.s3.is_none() => {
                        let mut rel = vec![S3_STANDIN_DIR.to_string(), bucket];
                        rel.extend(key);
                        Ok(local(self.base_dir.clone(), rel, 1, "s3://".into()))
                    }
                    Scheme::S3 => Ok(Target::S3 {
                        bucket,
                        key: joined,
                    }),
                    Scheme::Gs if self.gcs.is_none() => Err(unsupported(
                        "gs:// needs TESSERA_GCS_ENDPOINT or Google credentials \
                         (GOOGLE_SERVICE_ACCOUNT, GOOGLE_SERVICE_ACCOUNT_KEY, \
                         GOOGLE_APPLICATION_CREDENTIALS)",
                    )),
                    Scheme::Gs => Ok(Target::Gcs {
                        bucket,
                        key: joined,
                    }),
                    Scheme::Az if self.azure.is_none() => Err(unsupported(
                        "az:// needs AZURE_STORAGE_ACCOUNT_NAME with a key or SAS, or \
                         TESSERA_AZURE_USE_EMULATOR=true",
                    )),
                    Scheme::Az => Ok(Target::Azure {
                        container: bucket,
                        key: joined,
                    }),
                }
            }
        }
    }

    /// Stores `bytes` at `location`, replacing any existing file, creating parent
    /// directories; either the whole new content is visible under the final name or none.
    pub async fn put(&self, location: &str, bytes: Vec<u8>) -> Result<(), OutputError> {
        match self.resolve(location)? {
            Target::Local(file) => {
                tokio::task::spawn_blocking(move || local::write_atomic(&file, &bytes))
                    .await
                    .map_err(|e| OutputError::Task(e.to_string()))?
            }
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
            Target::Local(file) => tokio::task::spawn_blocking(move || local::read(&file))
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
        self.resolve_folder(&location)?;
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
        let join = |rel: &str| {
            // `file://` + `/rel` is `file:///rel`, as the expanded locations write it.
            if prefix.is_empty() {
                rel.to_string()
            } else {
                format!("{prefix}/{rel}")
            }
        };
        // Every location rule (schemes, segments, bucket names, the client's scope,
        // configured stores) applies to the folder as to a file in it.
        let target = self.resolve_folder(prefix)?;
        let mut found = match target.object() {
            None => {
                let Target::Local(folder) = target else {
                    return Ok(Vec::new());
                };
                let files = tokio::task::spawn_blocking(move || local::list(&folder, limit))
                    .await
                    .map_err(|e| OutputError::Task(e.to_string()))??;
                files.iter().map(|rel| join(rel)).collect::<Vec<_>>()
            }
            Some((_, _, folder)) => {
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
            Target::Local(file) => {
                return Err(OutputError::UnsupportedLocation {
                    // Never the host path (issue 12): the file name is enough here.
                    location: file.rel.last().cloned().unwrap_or_default(),
                    reason: "a local file is not an object".into(),
                });
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
    /// A missing parent, a parent that is a regular file, or a directory or link at the
    /// location all count as "no file": a later `put` reports the problem (or replaces
    /// the link). A symlink where a directory must be is an error naming it.
    pub async fn exists(&self, location: &str) -> Result<bool, OutputError> {
        match self.resolve(location)? {
            Target::Local(file) => tokio::task::spawn_blocking(move || local::exists(&file))
                .await
                .map_err(|e| OutputError::Task(e.to_string()))?,
            target => {
                let (store, key) = self.object_store(&target)?;
                match store.head(&key).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(store_error("check", location, e)),
                }
            }
        }
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

#[cfg(test)]
mod confined_tests;
#[cfg(test)]
mod tests;
