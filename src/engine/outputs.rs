//! Where a client's outputs may go (issue 12): the operator's [`OutputPolicy`] plus the
//! client's grants from the store make its `output::confine::Scope`. The engine checks a
//! new request's template against it at create (a 400 naming the location) and hands the
//! analysis and every tile sinks confined to it, so a grant revoked later holds from the
//! next tile on.

use crate::api::{ApiError, BatchSpec};
use crate::output::confine::{self, Location, Scope};
use crate::output::{OutputError, Sinks};
use crate::store::Store;

use super::{EngineError, Result};

/// The operator's rules for output locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPolicy {
    /// `false` for the operator's own runs (`tessera run`, embedded tools): locations are
    /// written as given, relative paths under the data folder. `true` (the default, and
    /// `tessera serve`): each client writes under `<data>/clients/<clientId>/`, plus the
    /// prefixes below and its own grants.
    pub confined: bool,
    /// Absolute prefixes every client may write under (`--allow-output-prefix`).
    pub allow_prefixes: Vec<Location>,
}

impl Default for OutputPolicy {
    fn default() -> Self {
        OutputPolicy {
            confined: true,
            allow_prefixes: Vec::new(),
        }
    }
}

impl OutputPolicy {
    /// No confinement: the caller is the operator.
    pub fn unconfined() -> Self {
        OutputPolicy {
            confined: false,
            allow_prefixes: Vec::new(),
        }
    }

    /// Confined, with these absolute prefixes allowed to every client (`/srv/out`,
    /// `file:///srv/out`); an invalid or relative one is an error naming it.
    pub fn allowing<S: AsRef<str>>(prefixes: &[S]) -> std::result::Result<Self, String> {
        let allow_prefixes = prefixes
            .iter()
            .map(|p| {
                let p = p.as_ref();
                match confine::parse_grant(p) {
                    Ok(l @ Location::Absolute(_)) => Ok(l),
                    Ok(_) => Err(format!(
                        "--allow-output-prefix {p:?}: only local absolute paths; grant buckets \
                         per client with `tessera clients grant`"
                    )),
                    Err(e) => Err(format!("--allow-output-prefix {p:?}: {e}")),
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(OutputPolicy {
            confined: true,
            allow_prefixes,
        })
    }

    /// The scope of `client`, or `None` when unconfined. Grants the store cannot parse
    /// (written by hand) are skipped with a warning rather than widening anything.
    pub fn scope(&self, store: &Store, client: &str) -> Result<Option<Scope>> {
        if !self.confined {
            return Ok(None);
        }
        let mut allowed = self.allow_prefixes.clone();
        for grant in store.output_grants(client)? {
            match confine::parse_grant(&grant) {
                Ok(location) => allowed.push(location),
                Err(e) => tracing::warn!(client, grant, "ignoring an invalid output grant: {e}"),
            }
        }
        Ok(Some(Scope { allowed }))
    }

    /// `sinks` as `client` may use them.
    pub fn sinks_for(
        &self,
        sinks: Sinks,
        store: &Store,
        client: &str,
    ) -> std::result::Result<Sinks, String> {
        match self.scope(store, client).map_err(|e| e.to_string())? {
            None => Ok(sinks),
            Some(scope) => sinks.for_client(client, scope).map_err(|e| e.to_string()),
        }
    }

    /// The create-time check: the folder a request's template starts with must be in the
    /// client's scope. (`api::validate` already checked every expansion is well formed.)
    pub fn check_create(
        &self,
        store: &Store,
        client: &str,
        spec: &BatchSpec,
        own_keys: bool,
    ) -> Result<()> {
        let Some(scope) = self.scope(store, client)? else {
            return Ok(());
        };
        let scope = with_own_bucket(scope, own_keys.then_some(spec.tile_path.as_str()));
        let refused = |reason: String| {
            EngineError::BadRequest(ApiError::Output(OutputError::Refused {
                location: spec.tile_path.clone(),
                reason,
            }))
        };
        confine::check_segment(client)
            .map_err(|r| refused(format!("the client id cannot name a folder: {r}")))?;
        let ids: Vec<&str> = spec
            .responses
            .iter()
            .map(|r| r.identifier.as_str())
            .collect();
        let folder = confine::check_template(&spec.tile_path, &ids).map_err(refused)?;
        scope.check(&folder).map_err(refused)
    }
}

/// A request that brings its own S3 keys (Batch v2 `delivery.s3`) writes with the user's
/// authority, not the operator's, so the confused-deputy rule (buckets only where granted)
/// does not apply to the bucket of its own output location: `own_keys_for` is that
/// location (the tile path template) when the request has keys. Every other rule (one
/// segment per value, no other bucket) still holds.
pub fn with_own_bucket(mut scope: Scope, own_keys_for: Option<&str>) -> Scope {
    if let Some(own) = own_keys_for.and_then(own_bucket) {
        scope.allowed.push(own);
    }
    scope
}

/// The bucket of an `s3://bucket/...` location, as a grant.
pub fn own_bucket(location: &str) -> Option<Location> {
    let bucket = location
        .strip_prefix("s3://")?
        .split('/')
        .next()
        .filter(|b| !b.is_empty() && !b.contains('<'))?;
    confine::parse_grant(&format!("s3://{bucket}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> BatchSpec {
        let body = serde_json::json!({
            "processRequest": {
                "input": {
                    "bounds": {"bbox": [15.01, 46.01, 15.02, 46.02]},
                    "data": [{"type": "tessera-synthetic"}]
                },
                "evalscript": "//VERSION=3\nfunction setup(){return {input:['B04'],output:{bands:1}}}\nfunction evaluatePixel(s){return [s.B04]}"
            },
            "tilingGrid": {"id": 1, "resolution": 20},
            "output": {"defaultTilePath": path}
        });
        crate::api::validate(body.as_object().unwrap()).unwrap()
    }

    fn refusal(policy: &OutputPolicy, store: &Store, client: &str, path: &str) -> String {
        match policy.check_create(store, client, &spec(path), false) {
            Err(EngineError::BadRequest(ApiError::Output(OutputError::Refused {
                location,
                reason,
            }))) => {
                assert!(
                    location.starts_with(path.trim_end_matches('/')),
                    "{location}"
                );
                reason
            }
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn confined_clients_need_prefixes_or_grants_outside_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).unwrap();
        let policy = OutputPolicy::allowing(&["/srv/shared/"]).unwrap();
        let ok = |client: &str, path: &str| policy.check_create(&store, client, &spec(path), false);
        assert!(ok("a", "results").is_ok());
        assert!(ok("a", "results/<tileName>/<outputId>.tif").is_ok());
        assert!(ok("a", "/srv/shared/run").is_ok());
        assert!(ok("a", "file:///srv/shared/<tileName>.tif").is_ok());
        assert!(refusal(&policy, &store, "a", "/srv/other").contains("absolute"));
        assert!(refusal(&policy, &store, "a", "/etc/profile.d/<tileId>.sh").contains("absolute"));
        assert!(refusal(&policy, &store, "a", "file:///tmp").contains("absolute"));
        assert!(refusal(&policy, &store, "a", "s3://bucket-a").contains("not granted"));

        store.grant_output("a", "s3://bucket-a/team").unwrap();
        store.grant_output("a", "/home/a").unwrap();
        assert!(ok("a", "s3://bucket-a/team").is_ok());
        assert!(ok("a", "s3://bucket-a/team/x/<tileName>.tif").is_ok());
        assert!(ok("a", "/home/a/out").is_ok());
        assert!(refusal(&policy, &store, "a", "s3://bucket-a").contains("not granted"));
        assert!(
            refusal(&policy, &store, "a", "s3://bucket-a/<tileName>.tif").contains("not granted")
        );
        assert!(refusal(&policy, &store, "a", "s3://bucket-a/teamster").contains("not granted"));
        // Grants are per client.
        assert!(refusal(&policy, &store, "b", "s3://bucket-a/team").contains("not granted"));
        assert!(refusal(&policy, &store, "b", "/home/a/out").contains("absolute"));
        // A revoke holds at once.
        store.revoke_output("a", "s3://bucket-a/team").unwrap();
        assert!(refusal(&policy, &store, "a", "s3://bucket-a/team").contains("not granted"));
        // A client id that cannot be a folder name never gets one.
        assert!(refusal(&policy, &store, "../x", "results").contains("client id"));
    }

    #[test]
    fn unconfined_allows_everything_and_prefixes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("p.db")).unwrap();
        let open = OutputPolicy::unconfined();
        assert!(open
            .check_create(&store, "local", &spec("/tmp/x"), false)
            .is_ok());
        assert!(open.scope(&store, "local").unwrap().is_none());
        assert!(OutputPolicy::allowing(&["relative"])
            .unwrap_err()
            .contains("relative"));
        assert!(OutputPolicy::allowing(&["s3://b"])
            .unwrap_err()
            .contains("grant"));
        assert!(OutputPolicy::allowing(&["/a/../b"])
            .unwrap_err()
            .contains("'..'"));
        assert_eq!(
            OutputPolicy::allowing(&["file:///srv/x"])
                .unwrap()
                .allow_prefixes,
            vec![Location::Absolute(vec!["srv".into(), "x".into()])]
        );
        // A hand-written bad grant is skipped, not a wider scope.
        store.grant_output("c", "s3://b/../..").unwrap();
        let scope = OutputPolicy::default().scope(&store, "c").unwrap().unwrap();
        assert!(scope.allowed.is_empty());
    }

    /// The engine end to end with the default (confined) policy: clients write in their
    /// own folders, absolute paths are a 400 at create, one client's `overwrite` cannot
    /// touch another's files, and the preflight neither follows links nor shows host paths.
    mod end_to_end {
        use std::time::{Duration, Instant};

        use super::*;
        use crate::engine::lifecycle::{Event, Status};
        use crate::engine::{Engine, EngineConfig};

        fn body(path: &str, overwrite: bool) -> serde_json::Value {
            let mut b = serde_json::json!({
                "processRequest": {
                    "input": {
                        "bounds": {"bbox": [15.01, 46.01, 15.02, 46.02]},
                        "data": [{"type": "tessera-synthetic"}]
                    },
                    "evalscript": include_str!("../../evalscripts/ndvi.js")
                },
                "tilingGrid": {"id": 1, "resolution": 20},
                "output": {"defaultTilePath": path}
            });
            b["output"]["overwrite"] = overwrite.into();
            b
        }

        fn run(engine: &Engine, client: &str, body: &serde_json::Value) -> (Status, String) {
            let r = engine.create(client, body).unwrap();
            engine.act(client, &r.id, Event::Start).unwrap();
            let started = Instant::now();
            loop {
                let r = engine.get(client, &r.id).unwrap();
                if matches!(r.status, Status::Done | Status::Failed | Status::Partial) {
                    return (r.status, r.error.unwrap_or_default());
                }
                assert!(started.elapsed() < Duration::from_secs(120), "{r:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        #[test]
        fn clients_are_confined_to_their_folders() {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let engine = Engine::start(EngineConfig {
                db_path: dir.path().join("t.db"),
                data_dir: data.clone(),
                workers: 1,
                ..EngineConfig::default()
            })
            .unwrap();
            let fixed = "shared/<tileName>/<outputId>.<format>";
            assert_eq!(run(&engine, "a", &body(fixed, false)).0, Status::Done);
            let a_files = std::fs::read_dir(data.join("clients/a/shared"))
                .unwrap()
                .count();
            assert_eq!(a_files, 1);
            let a_tile = std::fs::read_dir(data.join("clients/a/shared"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path()
                .join("default.tif");
            let a_bytes = std::fs::read(&a_tile).unwrap();
            std::fs::write(&a_tile, b"a's own bytes").unwrap();
            // B writes the same relative path with overwrite: into its own folder.
            assert_eq!(run(&engine, "b", &body(fixed, true)).0, Status::Done);
            assert_eq!(std::fs::read(&a_tile).unwrap(), b"a's own bytes");
            assert!(data.join("clients/b/shared").is_dir());
            assert_ne!(a_bytes.len(), 0);

            // Absolute paths and file:// URLs are refused at create, nothing stored.
            let outside = dir.path().join("outside");
            for path in [
                outside.to_str().unwrap().to_string(),
                format!("file://{}", outside.display()),
                "/etc/profile.d/<tileId>.sh".to_string(),
            ] {
                match engine.create("a", &body(&path, true)) {
                    Err(EngineError::BadRequest(ApiError::Output(OutputError::Refused {
                        ..
                    }))) => {}
                    other => panic!("{path}: {other:?}"),
                }
            }
            assert!(!outside.exists());

            // A symlink planted in A's folder: the preflight (overwrite false) fails
            // naming A's own path, without listing what it points to.
            std::fs::create_dir_all(outside.join("deep")).unwrap();
            std::fs::write(outside.join("deep/x.tif"), b"x").unwrap();
            std::os::unix::fs::symlink(&outside, data.join("clients/a/link")).unwrap();
            let (status, error) = run(&engine, "a", &body("link/<tileName>.tif", false));
            assert_eq!(status, Status::Failed);
            assert!(error.contains("cannot open link"), "{error}");
            assert!(error.contains("symbolic link"), "{error}");
            assert!(!error.contains(dir.path().to_str().unwrap()), "{error}");
            // With overwrite (no preflight) the tile fails instead of writing through.
            let (status, _) = run(&engine, "a", &body("link/<tileName>.tif", true));
            assert_ne!(status, Status::Done);
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
            assert_eq!(std::fs::read_dir(outside.join("deep")).unwrap().count(), 1);
        }
    }
}
