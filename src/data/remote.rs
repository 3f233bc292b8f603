//! Where scene files and catalogs live: local paths, `file://`, `http(s)://` and `s3://`
//! URLs, read through object_store with range reads, plus the one POST a STAC API needs.
//!
//! Retries are ours, not object_store's (its own are switched off): one bounded,
//! exponential loop ([`RetryPolicy`]) for every scheme, so a test can make it fast and a
//! permanent failure (404, denied, corrupt bytes) is reported at once with the URL.
//!
//! S3 is configured from the same variables as the S3 output (`src/output/s3.rs`):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `TESSERA_S3_ENDPOINT` | endpoint URL of an S3-compatible server | AWS |
//! | `TESSERA_S3_REGION` (or `AWS_REGION`) | region to sign for | `us-east-1` |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | credentials; without them requests are unsigned (public buckets) | none |
//! | `TESSERA_S3_ALLOW_HTTP` | `true`: permit a plain-http endpoint | `true` iff the endpoint is `http://` |
//! | `TESSERA_S3_VIRTUAL_HOSTED` | `true`: `bucket.host` URLs | `false` |
//!
//! and the retry policy from `TESSERA_DATA_RETRY_ATTEMPTS` (default 4) and
//! `TESSERA_DATA_RETRY_BACKOFF_MS` (first wait, doubled per retry up to 5 s; default 200).

use std::sync::Arc;

use object_store::path::Path as StorePath;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

pub use crate::raster::cog::RetryPolicy;
use crate::raster::cog::{ByteSource, Cog, CogError, FileSource, ObjectStoreSource, PrefixSource};

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{location}: {reason}")]
    Fetch { location: String, reason: String },
    #[error("configuration: {0}")]
    Config(String),
}

/// S3 connection settings (see the module table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: bool,
    pub virtual_hosted: bool,
}

/// How remote files are reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteConfig {
    pub retry: RetryPolicy,
    pub s3: S3Settings,
    /// The largest COG read whole from a server that ignores Range (None: 64 MiB,
    /// [`crate::raster::cog::WHOLE_FILE_LIMIT`]).
    pub whole_file_limit: Option<u64>,
    /// Decoded COG chunks shared by every read through this configuration (and its clones).
    pub cache: crate::raster::cache::BlockCache,
}

fn flag(name: &str, value: Option<String>, default: bool) -> Result<bool, RemoteError> {
    match value.as_deref() {
        None | Some("") => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(RemoteError::Config(format!(
            "{name}={v:?}: expected true or false"
        ))),
    }
}

impl RemoteConfig {
    /// Reads the variables of the module table through `get` (tests pass a map).
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<RemoteConfig, RemoteError> {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let mut retry = RetryPolicy::default();
        if let Some(v) = var("TESSERA_DATA_RETRY_ATTEMPTS") {
            retry.attempts = v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=20).contains(n))
                .ok_or_else(|| {
                    RemoteError::Config(format!(
                        "TESSERA_DATA_RETRY_ATTEMPTS={v:?}: expected 1 to 20"
                    ))
                })?;
        }
        if let Some(v) = var("TESSERA_DATA_RETRY_BACKOFF_MS") {
            let ms = v
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 60_000)
                .ok_or_else(|| {
                    RemoteError::Config(format!(
                        "TESSERA_DATA_RETRY_BACKOFF_MS={v:?}: expected milliseconds up to 60000"
                    ))
                })?;
            retry.first_backoff = std::time::Duration::from_millis(ms);
        }
        let endpoint = var("TESSERA_S3_ENDPOINT");
        let plain_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let s3 = S3Settings {
            region: var("TESSERA_S3_REGION").or_else(|| var("AWS_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            allow_http: flag(
                "TESSERA_S3_ALLOW_HTTP",
                var("TESSERA_S3_ALLOW_HTTP"),
                plain_http,
            )?,
            virtual_hosted: flag(
                "TESSERA_S3_VIRTUAL_HOSTED",
                var("TESSERA_S3_VIRTUAL_HOSTED"),
                false,
            )?,
            endpoint,
        };
        Ok(RemoteConfig {
            retry,
            s3,
            whole_file_limit: None,
            cache: crate::raster::cache::BlockCache::from_vars(get).map_err(RemoteError::Config)?,
        })
    }
}

/// object_store's own retries are off: [`ObjectStoreSource`] retries with our policy.
fn no_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    }
}

/// The store and object path for a `file://`, `http(s)://` or `s3://` URL.
pub fn store_for(
    url: &url::Url,
    cfg: &RemoteConfig,
) -> Result<(Arc<dyn ObjectStore>, StorePath), String> {
    match url.scheme() {
        "file" => {
            let (store, path) = object_store::parse_url(url).map_err(|e| e.to_string())?;
            Ok((Arc::from(store), path))
        }
        "http" | "https" => {
            let origin = url.origin().ascii_serialization();
            let store = object_store::http::HttpBuilder::new()
                .with_url(origin)
                .with_client_options(ClientOptions::new().with_allow_http(true))
                .with_retry(no_retries())
                .build()
                .map_err(|e| e.to_string())?;
            let path = StorePath::from_url_path(url.path()).map_err(|e| e.to_string())?;
            Ok((Arc::new(store), path))
        }
        "s3" => {
            let bucket = url
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or("an s3:// URL needs a bucket")?;
            let s3 = &cfg.s3;
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(s3.region.as_deref().unwrap_or("us-east-1"))
                .with_allow_http(s3.allow_http)
                .with_virtual_hosted_style_request(s3.virtual_hosted)
                .with_retry(no_retries());
            if let Some(e) = &s3.endpoint {
                b = b.with_endpoint(e);
            }
            match (&s3.access_key_id, &s3.secret_access_key) {
                (Some(k), Some(s)) => {
                    b = b.with_access_key_id(k).with_secret_access_key(s);
                    if let Some(t) = &s3.session_token {
                        b = b.with_token(t);
                    }
                }
                _ => b = b.with_skip_signature(true),
            }
            let store = b.build().map_err(|e| e.to_string())?;
            let path = StorePath::from_url_path(url.path()).map_err(|e| e.to_string())?;
            Ok((Arc::new(store), path))
        }
        other => Err(format!(
            "the {other}:// scheme is not supported (file, http, https, s3)"
        )),
    }
}

/// A byte source for a local path or a URL.
pub fn open_source(location: &str, cfg: &RemoteConfig) -> Result<Arc<dyn ByteSource>, CogError> {
    if !location.contains("://") {
        return Ok(Arc::new(FileSource::open(location)?));
    }
    let bad = |reason: String| CogError::Io {
        path: location.to_string(),
        start: 0,
        end: 0,
        reason,
    };
    let url = url::Url::parse(location).map_err(|e| bad(e.to_string()))?;
    let (store, path) = store_for(&url, cfg).map_err(bad)?;
    let mut source = ObjectStoreSource::new(location, store, path)?.with_retry(cfg.retry);
    if let Some(limit) = cfg.whole_file_limit {
        source = source.with_whole_file_limit(limit);
    }
    // The next tile opening the same file reads its size and IFDs from memory.
    if let Some((size, _)) = cfg.cache.header(location) {
        source = source.with_size(size);
    }
    let prefixed =
        PrefixSource::open(Arc::new(source), &cfg.cache).map_err(|reason| bad(reason.clone()))?;
    Ok(Arc::new(prefixed))
}

/// Opens a COG at a local path or URL.
pub fn open_cog(location: &str, cfg: &RemoteConfig) -> Result<Cog, CogError> {
    Ok(Cog::open(open_source(location, cfg)?)?.with_cache(cfg.cache.clone()))
}

/// A whole (small) file: a catalog or item JSON.
pub fn fetch(location: &str, cfg: &RemoteConfig) -> Result<Vec<u8>, RemoteError> {
    let err = |reason: String| RemoteError::Fetch {
        location: location.to_string(),
        reason,
    };
    if !location.contains("://") {
        return std::fs::read(location).map_err(|e| err(e.to_string()));
    }
    // Documents over HTTP with one plain GET: no HEAD, no Range, so any static server works.
    if location.starts_with("http://") || location.starts_with("https://") {
        return send(location, None, cfg);
    }
    let src = open_source(location, cfg).map_err(|e| err(e.to_string()))?;
    let size = src.size().map_err(err)?;
    src.read_range(0, size).map_err(err)
}

/// POSTs a JSON body (a STAC API search) and returns the response body.
pub fn post_json(
    url: &str,
    body: &serde_json::Value,
    cfg: &RemoteConfig,
) -> Result<Vec<u8>, RemoteError> {
    send(url, Some(body), cfg)
}

/// GETs a URL as is, query string included (a STAC API `next` link); local paths and
/// `file://` or `s3://` URLs go through [`fetch`].
pub fn get(url: &str, cfg: &RemoteConfig) -> Result<Vec<u8>, RemoteError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        send(url, None, cfg)
    } else {
        fetch(url, cfg)
    }
}

/// One HTTP request with the retry policy: connection errors and 5xx/429 answers are
/// retried, other failures are final.
fn send(
    url: &str,
    body: Option<&serde_json::Value>,
    cfg: &RemoteConfig,
) -> Result<Vec<u8>, RemoteError> {
    let err = |reason: String| RemoteError::Fetch {
        location: url.to_string(),
        reason,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let payload = match body {
        Some(b) => Some(serde_json::to_vec(b).map_err(|e| err(e.to_string()))?),
        None => None,
    };
    let mut attempt = 1;
    loop {
        let result: Result<Vec<u8>, (bool, String)> = runtime.block_on(async {
            let request = match &payload {
                Some(p) => client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(p.clone()),
                None => client.get(url),
            };
            let resp = request
                .header("accept", "application/geo+json, application/json")
                .send()
                .await
                .map_err(|e| (true, e.to_string()))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| (true, e.to_string()))?;
            if status.is_success() {
                return Ok(bytes.to_vec());
            }
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            let transient = status.is_server_error() || status.as_u16() == 429;
            Err((transient, format!("HTTP {status}: {text}")))
        });
        match result {
            Ok(b) => return Ok(b),
            Err((transient, reason)) => {
                if !transient || attempt >= cfg.retry.attempts.max(1) {
                    return Err(err(format!("{reason} (after {attempt} attempt(s))")));
                }
                std::thread::sleep(cfg.retry.delay(attempt));
                attempt += 1;
            }
        }
    }
}

/// Resolves a (possibly relative) href against the location of the document it is in:
/// URLs with URL rules, local paths against the document's folder.
pub fn resolve(base: &str, href: &str) -> String {
    if href.contains("://") || href.starts_with('/') && !base.contains("://") {
        return href.to_string();
    }
    if base.contains("://") {
        if let Ok(b) = url::Url::parse(base) {
            if let Ok(u) = b.join(href) {
                return u.to_string();
            }
        }
        return href.to_string();
    }
    let dir = std::path::Path::new(base)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    let mut out = dir.to_path_buf();
    for part in href.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_hrefs_resolve_like_stac_says() {
        assert_eq!(
            resolve("http://h:1/a/catalog.json", "./s2/collection.json"),
            "http://h:1/a/s2/collection.json"
        );
        assert_eq!(
            resolve("http://h:1/a/s2/collection.json", "../x/item.json"),
            "http://h:1/a/x/item.json"
        );
        assert_eq!(
            resolve("s3://b/c/cat.json", "i/B04.tif"),
            "s3://b/c/i/B04.tif"
        );
        assert_eq!(
            resolve("http://h/a/c.json", "/root.json"),
            "http://h/root.json"
        );
        assert_eq!(
            resolve("http://h/a/c.json", "https://o/x.tif"),
            "https://o/x.tif"
        );
        assert_eq!(
            resolve("/d/cat/catalog.json", "./s2/c.json"),
            "/d/cat/s2/c.json"
        );
        assert_eq!(
            resolve("/d/cat/s2/c.json", "../i/i.json"),
            "/d/cat/i/i.json"
        );
        assert_eq!(resolve("/d/cat/c.json", "/abs/B04.tif"), "/abs/B04.tif");
    }

    #[test]
    fn config_from_vars() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = RemoteConfig::from_vars(&vars(&[])).unwrap();
        assert_eq!(c, RemoteConfig::default());
        let c = RemoteConfig::from_vars(&vars(&[
            ("TESSERA_DATA_RETRY_ATTEMPTS", "2"),
            ("TESSERA_DATA_RETRY_BACKOFF_MS", "5"),
            ("TESSERA_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ]))
        .unwrap();
        assert_eq!(c.retry.attempts, 2);
        assert_eq!(c.retry.first_backoff.as_millis(), 5);
        assert!(c.s3.allow_http);
        assert!(!c.s3.virtual_hosted);
        for bad in [
            [("TESSERA_DATA_RETRY_ATTEMPTS", "0")],
            [("TESSERA_DATA_RETRY_BACKOFF_MS", "soon")],
            [("TESSERA_S3_ALLOW_HTTP", "maybe")],
        ] {
            let leaked: &'static [(&str, &str)] = Box::leak(Box::new(bad));
            let e = RemoteConfig::from_vars(&vars(leaked))
                .unwrap_err()
                .to_string();
            assert!(e.contains(leaked[0].0), "{e}");
        }
    }

    #[test]
    fn unknown_schemes_are_named() {
        let u = url::Url::parse("gs://bucket/x.tif").unwrap();
        let e = store_for(&u, &RemoteConfig::default()).err().unwrap();
        assert!(e.contains("gs://"), "{e}");
    }
}
