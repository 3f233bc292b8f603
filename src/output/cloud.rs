//! Google Cloud Storage (`gs://bucket/key`) and Azure Blob Storage (`az://container/key`)
//! through object_store, configured from the environment like S3 (see `s3.rs`).
//!
//! Google Cloud Storage, read once by [`GcsConfig::from_env`]:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `TESSERA_GCS_ENDPOINT` | base URL of an emulator (fake-gcs-server, gcp-storage-emulator), e.g. `http://127.0.0.1:4443`; requests are sent without OAuth | Google |
//! | `GOOGLE_SERVICE_ACCOUNT` (or `GOOGLE_SERVICE_ACCOUNT_PATH`) | service-account JSON file | none |
//! | `GOOGLE_SERVICE_ACCOUNT_KEY` | service-account JSON itself | none |
//! | `GOOGLE_APPLICATION_CREDENTIALS` | application-default credentials file | none |
//! | `TESSERA_GCS_ALLOW_HTTP` | permit a plain-http endpoint | `true` iff the endpoint is `http://` |
//! | `TESSERA_GCS_MAX_RETRIES` | retries of a failed request | `3` |
//!
//! An endpoint is turned into the service-account JSON object_store understands for
//! emulators (`gcs_base_url` + `disable_oauth`), so no token is ever fetched from Google.
//!
//! Azure Blob Storage, read once by [`AzureConfig::from_env`]:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `TESSERA_AZURE_USE_EMULATOR` | `true`: Azurite's well-known account and key | `false` |
//! | `TESSERA_AZURE_ENDPOINT` | account URL, e.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite | `https://<account>.blob.core.windows.net`, or Azurite's default with the emulator |
//! | `AZURE_STORAGE_ACCOUNT_NAME` | storage account | `devstoreaccount1` with the emulator |
//! | `AZURE_STORAGE_ACCOUNT_KEY` | shared key (base64) | Azurite's key with the emulator |
//! | `AZURE_STORAGE_SAS_KEY` | SAS token instead of a key | none |
//! | `TESSERA_AZURE_ALLOW_HTTP` | permit a plain-http endpoint | `true` iff the endpoint is `http://` |
//! | `TESSERA_AZURE_MAX_RETRIES` | retries of a failed request | `3` |
//!
//! Unlike `s3://`, neither has a local stand-in: an unconfigured `gs://` or `az://` location
//! is an error naming the variables to set, never a silent local write.

use std::sync::Arc;
use std::time::Duration;

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::OutputError;

/// Azurite's documented development account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's documented (public) development key for [`AZURITE_ACCOUNT`].
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's default blob port on loopback.
const AZURITE_DEFAULT_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// Total time one request may spend retrying: bounds how long an unreachable store holds a
/// tile.
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);

/// Connection settings for `gs://` locations.
#[derive(Clone, PartialEq, Eq)]
pub struct GcsConfig {
    pub endpoint: Option<String>,
    pub service_account_path: Option<String>,
    pub service_account_key: Option<String>,
    pub application_credentials: Option<String>,
    pub allow_http: bool,
    pub max_retries: usize,
}

/// Keys are never printed.
impl std::fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsConfig")
            .field("endpoint", &self.endpoint)
            .field("service_account_path", &self.service_account_path)
            .field(
                "service_account_key",
                &self.service_account_key.as_ref().map(|_| "***"),
            )
            .field("application_credentials", &self.application_credentials)
            .field("allow_http", &self.allow_http)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// Connection settings for `az://` locations.
#[derive(Clone, PartialEq, Eq)]
pub struct AzureConfig {
    pub account: String,
    pub endpoint: Option<String>,
    pub access_key: Option<String>,
    pub sas_key: Option<String>,
    pub allow_http: bool,
    pub max_retries: usize,
}

/// Keys are never printed.
impl std::fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureConfig")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key.as_ref().map(|_| "***"))
            .field("sas_key", &self.sas_key.as_ref().map(|_| "***"))
            .field("allow_http", &self.allow_http)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// The lookups shared by both parsers: non-empty values, boolean flags, counts, URLs.
struct Vars<F> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn var(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, OutputError> {
        match self.var(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no") => Ok(false),
            Some(v) => Err(invalid(format!("{name}={v:?}: expected true or false"))),
        }
    }

    fn count(&self, name: &str, default: usize) -> Result<usize, OutputError> {
        match self.var(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| invalid(format!("{name}={v:?}: not a count"))),
        }
    }

    /// An http(s) URL, returned without a trailing slash.
    fn url(&self, name: &str) -> Result<Option<String>, OutputError> {
        let Some(value) = self.var(name) else {
            return Ok(None);
        };
        let url = url::Url::parse(&value).map_err(|e| invalid(format!("{name}={value:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(format!(
                "{name}={value:?}: must be an http:// or https:// URL"
            )));
        }
        Ok(Some(value.trim_end_matches('/').to_string()))
    }
}

fn invalid(reason: String) -> OutputError {
    OutputError::InvalidOption(reason)
}

fn retry(max_retries: usize) -> RetryConfig {
    RetryConfig {
        max_retries,
        retry_timeout: RETRY_TIMEOUT,
        ..RetryConfig::default()
    }
}

impl GcsConfig {
    /// Reads the process environment; `Ok(None)` when GCS is not configured.
    pub fn from_env() -> Result<Option<Self>, OutputError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`GcsConfig::from_env`] over any variable lookup (pure, for tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OutputError> {
        let v = Vars { get };
        let endpoint = v.url("TESSERA_GCS_ENDPOINT")?;
        let service_account_path = v
            .var("GOOGLE_SERVICE_ACCOUNT")
            .or_else(|| v.var("GOOGLE_SERVICE_ACCOUNT_PATH"));
        let service_account_key = v.var("GOOGLE_SERVICE_ACCOUNT_KEY");
        let application_credentials = v.var("GOOGLE_APPLICATION_CREDENTIALS");
        if service_account_path.is_some() && service_account_key.is_some() {
            return Err(invalid(
                "set GOOGLE_SERVICE_ACCOUNT or GOOGLE_SERVICE_ACCOUNT_KEY, not both".into(),
            ));
        }
        if endpoint.is_none()
            && service_account_path.is_none()
            && service_account_key.is_none()
            && application_credentials.is_none()
        {
            return Ok(None);
        }
        let plain_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        Ok(Some(GcsConfig {
            allow_http: v.flag("TESSERA_GCS_ALLOW_HTTP", plain_http)?,
            max_retries: v.count("TESSERA_GCS_MAX_RETRIES", 3)?,
            endpoint,
            service_account_path,
            service_account_key,
            application_credentials,
        }))
    }

    /// The service-account JSON object_store reads an emulator's base URL from; it never
    /// signs with the (empty) key because `disable_oauth` is set.
    pub fn emulator_key(endpoint: &str) -> String {
        serde_json::json!({
            "private_key": "",
            "private_key_id": "",
            "client_email": "",
            "gcs_base_url": endpoint,
            "disable_oauth": true,
        })
        .to_string()
    }

    fn build(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, OutputError> {
        let mut builder = GoogleCloudStorageBuilder::new()
            .with_bucket_name(bucket)
            .with_retry(retry(self.max_retries))
            .with_client_options(ClientOptions::new().with_allow_http(self.allow_http));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_service_account_key(Self::emulator_key(endpoint));
        } else if let Some(path) = &self.service_account_path {
            builder = builder.with_service_account_path(path);
        } else if let Some(key) = &self.service_account_key {
            builder = builder.with_service_account_key(key);
        }
        if let Some(path) = &self.application_credentials {
            builder = builder.with_application_credentials(path);
        }
        let store = builder.build().map_err(|e| OutputError::Store {
            action: "configure Google Cloud Storage for",
            location: format!("gs://{bucket}"),
            error: e.to_string(),
        })?;
        Ok(Arc::new(store))
    }
}

impl AzureConfig {
    /// Reads the process environment; `Ok(None)` when Azure is not configured.
    pub fn from_env() -> Result<Option<Self>, OutputError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`AzureConfig::from_env`] over any variable lookup (pure, for tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OutputError> {
        let v = Vars { get };
        let emulator = v.flag("TESSERA_AZURE_USE_EMULATOR", false)?;
        let endpoint = v.url("TESSERA_AZURE_ENDPOINT")?;
        let account = v.var("AZURE_STORAGE_ACCOUNT_NAME");
        let access_key = v.var("AZURE_STORAGE_ACCOUNT_KEY");
        let sas_key = v.var("AZURE_STORAGE_SAS_KEY");
        if !emulator && endpoint.is_none() && account.is_none() {
            return Ok(None);
        }
        let (account, endpoint, access_key) = if emulator {
            let account = account.unwrap_or_else(|| AZURITE_ACCOUNT.to_string());
            let key = match (&access_key, &sas_key) {
                (None, None) => Some(AZURITE_KEY.to_string()),
                _ => access_key,
            };
            let endpoint = endpoint.unwrap_or_else(|| AZURITE_DEFAULT_ENDPOINT.to_string());
            (account, Some(endpoint), key)
        } else {
            let account = account.ok_or_else(|| {
                invalid(
                    "set AZURE_STORAGE_ACCOUNT_NAME (or TESSERA_AZURE_USE_EMULATOR=true)".into(),
                )
            })?;
            (account, endpoint, access_key)
        };
        if access_key.is_none() && sas_key.is_none() {
            return Err(invalid(
                "set AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY for az:// outputs".into(),
            ));
        }
        if access_key.is_some() && sas_key.is_some() {
            return Err(invalid(
                "set AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY, not both".into(),
            ));
        }
        let plain_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        Ok(Some(AzureConfig {
            allow_http: v.flag("TESSERA_AZURE_ALLOW_HTTP", plain_http)?,
            max_retries: v.count("TESSERA_AZURE_MAX_RETRIES", 3)?,
            account,
            endpoint,
            access_key,
            sas_key,
        }))
    }

    /// The endpoint is used as the account URL (path style, `<endpoint>/<container>/<key>`),
    /// which is how Azurite addresses accounts, so no emulator switch is needed in
    /// object_store (whose emulator mode only reads its URL from the process environment).
    fn build(&self, container: &str) -> Result<Arc<dyn ObjectStore>, OutputError> {
        let mut builder = MicrosoftAzureBuilder::new()
            .with_account(&self.account)
            .with_container_name(container)
            .with_allow_http(self.allow_http)
            .with_retry(retry(self.max_retries));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if let Some(key) = &self.access_key {
            builder = builder.with_access_key(key);
        }
        if let Some(sas) = &self.sas_key {
            builder = builder.with_config(AzureConfigKey::SasKey, sas);
        }
        let store = builder.build().map_err(|e| OutputError::Store {
            action: "configure Azure Blob Storage for",
            location: format!("az://{container}"),
            error: e.to_string(),
        })?;
        Ok(Arc::new(store))
    }
}

/// Settings of one object-store kind: how to build a client for one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StoreConfig {
    Gcs(GcsConfig),
    Azure(AzureConfig),
}

impl StoreConfig {
    fn build(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, OutputError> {
        match self {
            StoreConfig::Gcs(c) => c.build(bucket),
            StoreConfig::Azure(c) => c.build(bucket),
        }
    }
}

impl super::s3::BuildStore for StoreConfig {
    fn build_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, OutputError> {
        self.build(bucket)
    }
}

/// GCS or Azure clients, one per bucket (or container).
pub(super) type CloudStores = super::s3::BucketStores<StoreConfig>;

#[cfg(test)]
mod tests {
    use super::super::s3::tests::vars;
    use super::*;

    #[test]
    fn gcs_unconfigured_without_endpoint_or_credentials() {
        assert_eq!(GcsConfig::from_vars(vars(&[])).unwrap(), None);
        let blank = vars(&[
            ("TESSERA_GCS_ENDPOINT", " "),
            ("TESSERA_GCS_MAX_RETRIES", "2"),
        ]);
        assert_eq!(GcsConfig::from_vars(blank).unwrap(), None);
    }

    #[test]
    fn gcs_emulator_endpoint_allows_http_and_builds_an_oauth_free_key() {
        let c = GcsConfig::from_vars(vars(&[("TESSERA_GCS_ENDPOINT", "http://127.0.0.1:4443/")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:4443"));
        assert!(c.allow_http);
        assert_eq!(c.max_retries, 3);
        let key: serde_json::Value =
            serde_json::from_str(&GcsConfig::emulator_key("http://127.0.0.1:4443")).unwrap();
        assert_eq!(key["gcs_base_url"], "http://127.0.0.1:4443");
        assert_eq!(key["disable_oauth"], true);
        // object_store accepts it without contacting anything.
        assert!(c.build("bucket").is_ok());
    }

    #[test]
    fn gcs_credentials_alone_mean_google_over_https() {
        let c = GcsConfig::from_vars(vars(&[("GOOGLE_SERVICE_ACCOUNT_KEY", "{\"secret\":1}")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.endpoint, None);
        assert!(!c.allow_http);
        assert!(
            !format!("{c:?}").contains("secret"),
            "key must not be printed"
        );
    }

    #[test]
    fn azure_unconfigured_without_account_endpoint_or_emulator() {
        assert_eq!(AzureConfig::from_vars(vars(&[])).unwrap(), None);
        let only_key = vars(&[("AZURE_STORAGE_ACCOUNT_KEY", "a2V5")]);
        assert_eq!(AzureConfig::from_vars(only_key).unwrap(), None);
    }

    #[test]
    fn azure_emulator_defaults_to_azurite_account_key_and_port() {
        let c = AzureConfig::from_vars(vars(&[("TESSERA_AZURE_USE_EMULATOR", "true")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.account, "devstoreaccount1");
        assert_eq!(
            c.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(c.access_key.as_deref(), Some(AZURITE_KEY));
        assert!(c.allow_http);
        assert!(
            !format!("{c:?}").contains("Eby8"),
            "key must not be printed"
        );
        let moved = AzureConfig::from_vars(vars(&[
            ("TESSERA_AZURE_USE_EMULATOR", "1"),
            (
                "TESSERA_AZURE_ENDPOINT",
                "http://127.0.0.1:41234/devstoreaccount1",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            moved.endpoint.as_deref(),
            Some("http://127.0.0.1:41234/devstoreaccount1")
        );
        assert!(moved.build("container").is_ok());
    }

    #[test]
    fn azure_real_account_needs_a_key_or_sas_and_uses_https() {
        let c = AzureConfig::from_vars(vars(&[
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.account, "acct");
        assert_eq!(c.endpoint, None);
        assert!(!c.allow_http);
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            (
                vec![
                    ("GOOGLE_SERVICE_ACCOUNT", "a"),
                    ("GOOGLE_SERVICE_ACCOUNT_KEY", "b"),
                ],
                "not both",
            ),
            (
                vec![("TESSERA_GCS_ENDPOINT", "ftp://h")],
                "http:// or https://",
            ),
            (
                vec![("TESSERA_GCS_ENDPOINT", "nope")],
                "TESSERA_GCS_ENDPOINT",
            ),
            (
                vec![
                    ("TESSERA_GCS_ENDPOINT", "http://h"),
                    ("TESSERA_GCS_MAX_RETRIES", "x"),
                ],
                "TESSERA_GCS_MAX_RETRIES",
            ),
        ];
        for (pairs, needle) in cases {
            let err = GcsConfig::from_vars(vars(&pairs)).unwrap_err().to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
        let cases = [
            (
                vec![("AZURE_STORAGE_ACCOUNT_NAME", "a")],
                "AZURE_STORAGE_ACCOUNT_KEY",
            ),
            (
                vec![("TESSERA_AZURE_ENDPOINT", "http://127.0.0.1:1/x")],
                "AZURE_STORAGE_ACCOUNT_NAME",
            ),
            (
                vec![("TESSERA_AZURE_USE_EMULATOR", "maybe")],
                "TESSERA_AZURE_USE_EMULATOR",
            ),
            (
                vec![
                    ("AZURE_STORAGE_ACCOUNT_NAME", "a"),
                    ("AZURE_STORAGE_ACCOUNT_KEY", "k"),
                    ("AZURE_STORAGE_SAS_KEY", "s"),
                ],
                "not both",
            ),
        ];
        for (pairs, needle) in cases {
            let err = AzureConfig::from_vars(vars(&pairs))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}
