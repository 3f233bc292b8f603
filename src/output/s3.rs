//! Real S3 (and S3-compatible servers: MinIO, Ceph, moto, ...) through object_store.
//!
//! Configuration comes from the environment, read once by [`S3Config::from_env`]:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `TESSERA_S3_ENDPOINT` | endpoint URL, e.g. `http://127.0.0.1:9000` | AWS for the region |
//! | `TESSERA_S3_REGION` (or `AWS_REGION`) | region to sign for | `us-east-1` |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | credentials (both or neither) | anonymous |
//! | `AWS_SESSION_TOKEN` | temporary credentials' token | none |
//! | `TESSERA_S3_ALLOW_HTTP` | `true`/`false`: permit a plain-http endpoint | `true` iff the endpoint is `http://` |
//! | `TESSERA_S3_VIRTUAL_HOSTED` | `true`: `bucket.host` URLs; `false`: path-style `host/bucket` | `false` (what S3-compatible servers need) |
//! | `TESSERA_S3_MAX_RETRIES` | retries of a failed request (object_store backs off exponentially) | `3` |
//!
//! S3 counts as configured when an endpoint or credentials are set. Otherwise `s3://`
//! locations keep going to the local stand-in under `<data>/s3/<bucket>/` (see
//! `sink.rs`), which the embedded default and the tests without a server rely on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, RetryConfig};

use super::OutputError;

/// Connection settings for `s3://` locations.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: bool,
    pub virtual_hosted: bool,
    pub max_retries: usize,
    /// Total time a request may spend retrying; bounds how long an unreachable endpoint
    /// holds a tile.
    pub retry_timeout: Duration,
}

/// Credentials are never printed.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted", &self.virtual_hosted)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// Reads the process environment; `Ok(None)` when S3 is not configured.
    pub fn from_env() -> Result<Option<Self>, OutputError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`S3Config::from_env`] over any variable lookup (pure, for tests). Empty values
    /// count as unset.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OutputError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let invalid = |reason: String| OutputError::InvalidOption(reason);
        let flag = |name: &str, default: bool| -> Result<bool, OutputError> {
            match var(name).map(|v| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if matches!(v.as_str(), "1" | "true" | "yes") => Ok(true),
                Some(v) if matches!(v.as_str(), "0" | "false" | "no") => Ok(false),
                Some(v) => Err(invalid(format!("{name}={v:?}: expected true or false"))),
            }
        };
        let endpoint = var("TESSERA_S3_ENDPOINT");
        let key = var("AWS_ACCESS_KEY_ID");
        let secret = var("AWS_SECRET_ACCESS_KEY");
        if key.is_some() != secret.is_some() {
            return Err(invalid(
                "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into(),
            ));
        }
        if endpoint.is_none() && key.is_none() {
            return Ok(None);
        }
        if let Some(e) = &endpoint {
            let url = url::Url::parse(e)
                .map_err(|err| invalid(format!("TESSERA_S3_ENDPOINT={e:?}: {err}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(format!(
                    "TESSERA_S3_ENDPOINT={e:?}: must be an http:// or https:// URL"
                )));
            }
        }
        let plain_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let max_retries = match var("TESSERA_S3_MAX_RETRIES") {
            None => 3,
            Some(v) => v
                .parse()
                .map_err(|_| invalid(format!("TESSERA_S3_MAX_RETRIES={v:?}: not a count")))?,
        };
        Ok(Some(S3Config {
            region: var("TESSERA_S3_REGION")
                .or_else(|| var("AWS_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint,
            access_key_id: key,
            secret_access_key: secret,
            session_token: var("AWS_SESSION_TOKEN"),
            allow_http: flag("TESSERA_S3_ALLOW_HTTP", plain_http)?,
            virtual_hosted: flag("TESSERA_S3_VIRTUAL_HOSTED", false)?,
            max_retries,
            retry_timeout: Duration::from_secs(60),
        }))
    }

    fn build(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, OutputError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&self.region)
            .with_allow_http(self.allow_http)
            .with_virtual_hosted_style_request(self.virtual_hosted)
            .with_retry(RetryConfig {
                max_retries: self.max_retries,
                retry_timeout: self.retry_timeout,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(key), Some(secret)) => {
                builder = builder
                    .with_access_key_id(key)
                    .with_secret_access_key(secret);
                if let Some(token) = &self.session_token {
                    builder = builder.with_token(token);
                }
            }
            // Without credentials, requests go unsigned (public or test buckets) rather
            // than probing instance metadata services.
            _ => builder = builder.with_skip_signature(true),
        }
        let store = builder.build().map_err(|e| OutputError::Store {
            action: "configure S3 for",
            location: format!("s3://{bucket}"),
            error: e.to_string(),
        })?;
        Ok(Arc::new(store))
    }
}

/// How to build the object_store client of one bucket (or container).
pub(super) trait BuildStore {
    fn build_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, OutputError>;
}

impl BuildStore for S3Config {
    fn build_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, OutputError> {
        self.build(bucket)
    }
}

/// One object_store client per bucket, built on first use and shared by clones of
/// [`super::Sinks`].
#[derive(Debug)]
pub(super) struct BucketStores<C> {
    pub config: C,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl<C: BuildStore> BucketStores<C> {
    pub fn new(config: C) -> Self {
        BucketStores {
            config,
            stores: Mutex::new(HashMap::new()),
        }
    }

    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, OutputError> {
        // A poisoned lock only means another thread panicked while inserting; the map
        // itself is still consistent.
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = stores.get(bucket) {
            return Ok(store.clone());
        }
        let store = self.config.build_store(bucket)?;
        stores.insert(bucket.to_string(), store.clone());
        Ok(store)
    }
}

pub(super) type S3Stores = BucketStores<S3Config>;

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An environment made of `pairs`, for the `from_vars` constructors (shared with
    /// `cloud`'s tests).
    pub(in crate::output) fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn unconfigured_without_endpoint_or_credentials() {
        assert_eq!(S3Config::from_vars(vars(&[])).unwrap(), None);
        let only_region = vars(&[
            ("TESSERA_S3_REGION", "eu-central-1"),
            ("TESSERA_S3_ENDPOINT", ""),
        ]);
        assert_eq!(S3Config::from_vars(only_region).unwrap(), None);
    }

    #[test]
    fn endpoint_defaults_to_path_style_and_http_when_the_url_is_http() {
        let c = S3Config::from_vars(vars(&[
            ("TESSERA_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.region, "us-east-1");
        assert!(c.allow_http && !c.virtual_hosted);
        assert_eq!(c.max_retries, 3);
        assert!(
            !format!("{c:?}").contains("\"s\""),
            "secret must not be printed"
        );
    }

    #[test]
    fn credentials_alone_mean_aws_with_https() {
        let c = S3Config::from_vars(vars(&[
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "eu-west-1"),
            ("TESSERA_S3_VIRTUAL_HOSTED", "true"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, None);
        assert_eq!(c.region, "eu-west-1");
        assert!(!c.allow_http && c.virtual_hosted);
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            (vec![("AWS_ACCESS_KEY_ID", "k")], "both AWS_ACCESS_KEY_ID"),
            (
                vec![("TESSERA_S3_ENDPOINT", "ftp://x")],
                "http:// or https://",
            ),
            (
                vec![("TESSERA_S3_ENDPOINT", "not a url")],
                "TESSERA_S3_ENDPOINT",
            ),
            (
                vec![
                    ("TESSERA_S3_ENDPOINT", "http://h"),
                    ("TESSERA_S3_ALLOW_HTTP", "maybe"),
                ],
                "TESSERA_S3_ALLOW_HTTP",
            ),
            (
                vec![
                    ("TESSERA_S3_ENDPOINT", "http://h"),
                    ("TESSERA_S3_MAX_RETRIES", "-1"),
                ],
                "TESSERA_S3_MAX_RETRIES",
            ),
        ];
        for (pairs, needle) in cases {
            let err = S3Config::from_vars(vars(&pairs)).unwrap_err().to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}
