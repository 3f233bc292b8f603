use std::fs;
use std::path::{Path, PathBuf};

use super::{local, LocalTarget, Sinks, Target};
use crate::output::OutputError;

fn local(sinks: &Sinks, location: &str) -> PathBuf {
    match sinks.resolve(location) {
        Ok(Target::Local(file)) => file.path(),
        Ok(other) => panic!("{location}: expected a local target, got {other:?}"),
        Err(e) => panic!("{location}: {e}"),
    }
}

fn unsupported_reason(sinks: &Sinks, location: &str) -> String {
    match sinks.resolve(location) {
        Err(OutputError::UnsupportedLocation { reason, .. }) => reason,
        other => panic!("{location}: expected UnsupportedLocation, got {other:?}"),
    }
}

/// Names in `dir`, sorted, to see stray staging files.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn resolves_every_location_form() {
    let sinks = Sinks::new("/base");
    assert_eq!(
        local(&sinks, "/abs/out/R/T/default.tif"),
        Path::new("/abs/out/R/T/default.tif")
    );
    assert_eq!(
        local(&sinks, "rel/R/T/default.tif"),
        Path::new("/base/rel/R/T/default.tif")
    );
    assert_eq!(local(&sinks, "file:///abs/x.tif"), Path::new("/abs/x.tif"));
    assert_eq!(local(&sinks, "FILE:///abs/x.tif"), Path::new("/abs/x.tif"));
    assert_eq!(
        local(&sinks, "file://localhost/abs/x.tif"),
        Path::new("/abs/x.tif")
    );
    assert_eq!(
        local(&sinks, "file:///abs/my%20dir/x.tif"),
        Path::new("/abs/my dir/x.tif")
    );
    assert_eq!(
        local(&sinks, "s3://bucket/pre/R/T/default.tif"),
        Path::new("/base/s3/bucket/pre/R/T/default.tif")
    );
    // S3 keys are taken literally, not URL-decoded.
    assert_eq!(
        local(&sinks, "s3://b/a%20b.tif"),
        Path::new("/base/s3/b/a%20b.tif")
    );
}

#[test]
fn rejects_locations_that_are_not_files_or_not_supported() {
    let sinks = Sinks::new("/base");
    assert!(unsupported_reason(&sinks, "").contains("empty"));
    assert!(unsupported_reason(&sinks, "out/dir/").contains("file name"));
    assert!(unsupported_reason(&sinks, "out/..").contains("'..'"));
    assert!(unsupported_reason(&sinks, "s3://bucket/").contains("file name"));
    assert!(unsupported_reason(&sinks, "gs://b/x.tif").contains("TESSERA_GCS_ENDPOINT"));
    assert!(unsupported_reason(&sinks, "https://h/x.tif").contains("only relative"));
    assert!(unsupported_reason(&sinks, "file://otherhost/x.tif").contains("file:///"));
    assert!(unsupported_reason(&sinks, "s3://bucket").contains("needs a key"));
    assert!(unsupported_reason(&sinks, "s3:///x.tif").contains("not a bucket name"));
    assert!(unsupported_reason(&sinks, "s3://../x.tif").contains("not a bucket name"));
    assert!(unsupported_reason(&sinks, "s3://b/a/../../x.tif").contains("'..'"));
    assert!(unsupported_reason(&sinks, "s3://b/./x.tif").contains("'.' segments"));
    let err = sinks.resolve("gs://b/x.tif").unwrap_err().to_string();
    assert!(err.contains("\"gs://b/x.tif\""), "{err}");
}

#[tokio::test]
async fn put_creates_parents_and_leaves_no_staging_file() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = Sinks::new(dir.path());
    let target = dir.path().join("out/REQ/31UDS_7_2/default.tif");
    let location = target.to_str().unwrap();
    assert!(!sinks.exists(location).await.unwrap());
    sinks.put(location, b"first".to_vec()).await.unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"first");
    assert!(sinks.exists(location).await.unwrap());
    assert_eq!(entries(target.parent().unwrap()), vec!["default.tif"]);
}

#[tokio::test]
async fn put_overwrites_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = Sinks::new(dir.path());
    sinks.put("o/x.tif", vec![1; 10_000]).await.unwrap();
    sinks.put("o/x.tif", vec![2; 3]).await.unwrap();
    assert_eq!(fs::read(dir.path().join("o/x.tif")).unwrap(), vec![2; 3]);
    assert_eq!(entries(&dir.path().join("o")), vec!["x.tif"]);
}

#[tokio::test]
async fn retry_after_a_crash_reuses_and_removes_the_staging_file() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = Sinks::new(dir.path());
    fs::create_dir_all(dir.path().join("o")).unwrap();
    // What a crash between create and rename leaves behind.
    fs::write(dir.path().join("o/.x.tif.partial"), vec![9; 50_000]).unwrap();
    assert!(!sinks.exists("o/x.tif").await.unwrap());
    sinks.put("o/x.tif", b"done".to_vec()).await.unwrap();
    assert_eq!(fs::read(dir.path().join("o/x.tif")).unwrap(), b"done");
    assert_eq!(entries(&dir.path().join("o")), vec!["x.tif"]);
}

#[tokio::test]
async fn relative_file_url_and_s3_forms_write_where_resolve_says() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = Sinks::new(dir.path());

    sinks.put("rel/a.json", b"{}".to_vec()).await.unwrap();
    assert_eq!(fs::read(dir.path().join("rel/a.json")).unwrap(), b"{}");

    let abs = dir.path().join("via url/b.tif");
    let url = url::Url::from_file_path(&abs).unwrap().to_string();
    assert!(url.contains("via%20url"), "{url}");
    sinks.put(&url, b"b".to_vec()).await.unwrap();
    assert_eq!(fs::read(&abs).unwrap(), b"b");
    assert!(sinks.exists(&url).await.unwrap());

    sinks
        .put("s3://bkt/p/R/T/default.tif", b"s".to_vec())
        .await
        .unwrap();
    assert_eq!(
        fs::read(dir.path().join("s3/bkt/p/R/T/default.tif")).unwrap(),
        b"s"
    );
    assert!(sinks.exists("s3://bkt/p/R/T/default.tif").await.unwrap());
    assert!(!sinks.exists("s3://bkt/p/R/T/other.tif").await.unwrap());
}

#[tokio::test]
async fn a_regular_file_where_a_directory_must_be_is_an_error_with_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = Sinks::new(dir.path());
    fs::write(dir.path().join("blocker"), b"i am a file").unwrap();

    assert!(!sinks.exists("blocker/sub/x.tif").await.unwrap());
    let err = sinks
        .put("blocker/sub/x.tif", b"x".to_vec())
        .await
        .unwrap_err();
    match &err {
        OutputError::Io { action, path, .. } => {
            assert_eq!(*action, "create directory");
            // The location as written, not the host path behind it.
            assert_eq!(path, Path::new("blocker"));
        }
        other => panic!("expected Io, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("cannot create directory blocker:"),
        "{message}"
    );
    assert!(message.contains("os error"), "{message}");
    assert!(!message.contains(dir.path().to_str().unwrap()), "{message}");
    assert_eq!(
        fs::read(dir.path().join("blocker")).unwrap(),
        b"i am a file"
    );

    // Directly under the file, too (no directories to create).
    let err = sinks.put("blocker/x.tif", b"x".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("os error"), "{err}");
}

#[tokio::test]
async fn a_directory_at_the_target_fails_cleanly_and_is_not_an_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = Sinks::new(dir.path());
    fs::create_dir_all(dir.path().join("o/x.tif/inner")).unwrap();
    assert!(!sinks.exists("o/x.tif").await.unwrap());
    let err = sinks.put("o/x.tif", b"x".to_vec()).await.unwrap_err();
    match &err {
        OutputError::Io { action, path, .. } => {
            assert_eq!(*action, "replace");
            assert_eq!(path, Path::new("o/x.tif"));
        }
        other => panic!("expected Io, got {other:?}"),
    }
    // The staging file was cleaned up.
    assert_eq!(entries(&dir.path().join("o")), vec!["x.tif"]);
}

#[tokio::test]
async fn unsupported_locations_fail_before_any_io() {
    let dir = tempfile::tempdir().unwrap();
    let sinks = Sinks::new(dir.path());
    assert!(matches!(
        sinks.put("gs://b/x.tif", vec![]).await,
        Err(OutputError::UnsupportedLocation { .. })
    ));
    assert!(matches!(
        sinks.exists("az://b/x.tif").await,
        Err(OutputError::UnsupportedLocation { .. })
    ));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn write_atomic_writes_exact_bytes_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let target = LocalTarget {
        root: dir.path().to_path_buf(),
        rel: vec!["plain.bin".into()],
        hidden: 0,
        shown_prefix: String::new(),
    };
    local::write_atomic(&target, &[1, 2, 3]).unwrap();
    assert_eq!(
        fs::read(dir.path().join("plain.bin")).unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(entries(dir.path()), vec!["plain.bin"]);
    assert_eq!(local::read(&target).unwrap(), vec![1, 2, 3]);
}

#[test]
fn parent_segments_never_leave_the_base_directory() {
    let sinks = Sinks::new("/base");
    for location in [
        "../x.tif",
        "a/../../x.tif",
        "a/b/../c.tif",
        "file:///base/../etc/x.tif",
    ] {
        assert!(
            unsupported_reason(&sinks, location).contains("'..'"),
            "{location}"
        );
    }
    assert!(unsupported_reason(&sinks, "a\\..\\x.tif").contains("'\\'"));
    assert_eq!(
        local(&sinks, "a..b/x.tif"),
        PathBuf::from("/base/a..b/x.tif")
    );
}

/// Real S3 against moto's S3-compatible server on loopback, started here. Skips with a
/// message when `moto_server` is not installed (`pip install 'moto[server]'`; the test
/// runner puts it on PATH). `$MOTO_SERVER` may name the executable.
mod s3 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::output::S3Config;

    struct Moto {
        child: Child,
        port: u16,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start_moto() -> Option<Moto> {
        let exe = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            println!("SKIPPED: {exe} not found; pip install 'moto[server]' to run the S3 tests");
            return None;
        };
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    /// CreateBucket with a bare HTTP request (moto does not check signatures).
    fn create_bucket(port: u16, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    fn config(port: u16) -> S3Config {
        S3Config::from_vars(|name| match name {
            "TESSERA_S3_ENDPOINT" => Some(format!("http://127.0.0.1:{port}")),
            "AWS_ACCESS_KEY_ID" => Some("testing".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("testing".into()),
            _ => None,
        })
        .unwrap()
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn put_exists_list_and_read_back_on_a_real_s3_server() {
        let Some(moto) = start_moto() else { return };
        create_bucket(moto.port, "results");
        let base = tempfile::tempdir().unwrap();
        let sinks = Sinks::with_s3(base.path(), Some(config(moto.port)));
        let a = "s3://results/req-1/31UDS_7_2/default.tif";
        let b = "s3://results/req-1/31UDS_7_2/userdata.json";
        assert_eq!(
            sinks.resolve(a).unwrap(),
            Target::S3 {
                bucket: "results".into(),
                key: "req-1/31UDS_7_2/default.tif".into()
            }
        );
        assert!(!sinks.exists(a).await.unwrap());
        let tiff: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        sinks.put(a, tiff.clone()).await.unwrap();
        sinks.put(b, b"{\"n\": 1}\n".to_vec()).await.unwrap();
        assert!(sinks.exists(a).await.unwrap());
        assert_eq!(sinks.get(a).await.unwrap(), tiff);
        assert_eq!(sinks.get(b).await.unwrap(), b"{\"n\": 1}\n");
        assert_eq!(
            sinks.list_s3("results", "req-1").await.unwrap(),
            vec![a.to_string(), b.to_string()]
        );
        // Overwrite replaces the object.
        sinks.put(b, b"[]".to_vec()).await.unwrap();
        assert_eq!(sinks.get(b).await.unwrap(), b"[]");
        // Nothing landed in the local stand-in.
        assert!(!base.path().join("s3").exists());

        // A missing bucket is a clear error naming the location.
        let err = sinks
            .put("s3://no-such-bucket/x.tif", vec![1])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://no-such-bucket/x.tif"), "{err}");
        assert!(err.contains("NoSuchBucket") || err.contains("404"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreachable_endpoint_fails_within_the_retry_budget() {
        let port = free_port();
        let mut cfg = config(port);
        cfg.max_retries = 1;
        cfg.retry_timeout = Duration::from_secs(5);
        let sinks = Sinks::with_s3("/nonexistent-base", Some(cfg));
        let started = Instant::now();
        let err = sinks
            .put("s3://b/k.tif", vec![1, 2, 3])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot write s3://b/k.tif"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn without_configuration_s3_uses_the_local_standin() {
        let sinks = Sinks::with_s3("/base", None);
        assert!(sinks.s3_config().is_none());
        assert_eq!(
            local(&sinks, "s3://b/k/x.tif"),
            PathBuf::from("/base/s3/b/k/x.tif")
        );
    }
}

/// `Sinks::list` over local folders: recursive, relative to the prefix as written, no
/// staging files, bounded by `limit`.
mod listing {
    use super::*;

    #[tokio::test]
    async fn lists_files_under_a_folder_as_locations() {
        let base = tempfile::tempdir().unwrap();
        let sinks = Sinks::new(base.path());
        for rel in [
            "run/t1/default.tif",
            "run/t1/userdata.json",
            "run/t2/default.tif",
        ] {
            sinks.put(rel, vec![1]).await.unwrap();
        }
        fs::write(base.path().join("run/t2/.default.tif.partial"), b"x").unwrap();
        fs::write(base.path().join("other.tif"), b"x").unwrap();
        assert_eq!(
            sinks.list("run", 100).await.unwrap(),
            vec![
                "run/t1/default.tif",
                "run/t1/userdata.json",
                "run/t2/default.tif"
            ]
        );
        // Trailing slashes and absolute / file:// spellings come back as written.
        let abs = base.path().join("run").display().to_string();
        assert_eq!(
            sinks.list(&format!("{abs}/"), 100).await.unwrap()[0],
            format!("{abs}/t1/default.tif")
        );
        let url = format!("file://{abs}");
        assert_eq!(
            sinks.list(&url, 100).await.unwrap()[2],
            format!("{url}/t2/default.tif")
        );
        // The base directory itself, and the S3 stand-in under it.
        sinks.put("s3://b/k/x.tif", vec![1]).await.unwrap();
        assert_eq!(
            sinks.list("s3://b", 10).await.unwrap(),
            vec!["s3://b/k/x.tif"]
        );
        assert_eq!(sinks.list("", 100).await.unwrap().len(), 5);
        // Missing folders hold nothing; the limit bounds the work.
        assert!(sinks.list("nope/deeper", 10).await.unwrap().is_empty());
        assert_eq!(sinks.list("run", 2).await.unwrap().len(), 2);
        // The location rules of `resolve` apply.
        assert!(sinks.list("run/../..", 10).await.is_err());
        assert!(sinks.list("ftp://x/y", 10).await.is_err());
    }

    #[tokio::test]
    async fn preflight_applies_section_10_2_to_all_tiles_from_one_listing() {
        use crate::output::OutputOptions;
        let base = tempfile::tempdir().unwrap();
        let sinks = Sinks::new(base.path());
        let template = "out/<tileName>/<outputId>.tif";
        let tiles: Vec<Vec<String>> = ["t1", "t2"]
            .iter()
            .map(|t| vec![format!("out/{t}/a.tif"), format!("out/{t}/b.tif")])
            .collect();
        let o = |overwrite, skip_existing| OutputOptions {
            overwrite,
            skip_existing,
            ..OutputOptions::default()
        };
        assert_eq!(
            sinks
                .preflight(template, &o(false, false), &tiles)
                .await
                .unwrap(),
            0
        );
        sinks.put("out/t1/a.tif", vec![1]).await.unwrap();
        sinks.put("out/t1/b.tif", vec![1]).await.unwrap();
        match sinks.preflight(template, &o(false, false), &tiles).await {
            Err(OutputError::Exists(m)) => assert!(m.contains("out/t1/a.tif"), "{m}"),
            other => panic!("expected Exists, got {other:?}"),
        }
        assert_eq!(
            sinks
                .preflight(template, &o(false, true), &tiles)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            sinks
                .preflight(template, &o(true, false), &tiles)
                .await
                .unwrap(),
            0
        );
        // A request-unique path never collides: nothing is listed.
        let unique = "out/<requestId>/<tileName>/<outputId>.tif";
        assert_eq!(
            sinks
                .preflight(unique, &o(false, false), &tiles)
                .await
                .unwrap(),
            0
        );
        // 2 x 2500 = 5000 files with a fixed path: refused (the seed's limit).
        let many: Vec<Vec<String>> = (0..2500)
            .map(|i| vec![format!("out/{i}/a.tif"), format!("out/{i}/b.tif")])
            .collect();
        let err = sinks
            .preflight(template, &o(false, true), &many)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("5000"), "{err}");
    }

    #[test]
    fn gs_and_az_resolve_only_when_configured() {
        let bare = Sinks::new("/base");
        let reason = unsupported_reason(&bare, "gs://b/k.tif");
        assert!(reason.contains("TESSERA_GCS_ENDPOINT"), "{reason}");
        let reason = unsupported_reason(&bare, "az://c/k.tif");
        assert!(reason.contains("AZURE_STORAGE_ACCOUNT_NAME"), "{reason}");
        let gcs = crate::output::GcsConfig::from_vars(|n| {
            (n == "TESSERA_GCS_ENDPOINT").then(|| "http://127.0.0.1:1".to_string())
        })
        .unwrap();
        let azure = crate::output::AzureConfig::from_vars(|n| {
            (n == "TESSERA_AZURE_USE_EMULATOR").then(|| "true".to_string())
        })
        .unwrap();
        let sinks = Sinks::new("/base").with_gcs(gcs).with_azure(azure);
        assert_eq!(
            sinks.resolve("gs://b/run/k.tif").unwrap(),
            Target::Gcs {
                bucket: "b".into(),
                key: "run/k.tif".into()
            }
        );
        assert_eq!(
            sinks.resolve("az://c/k.tif").unwrap(),
            Target::Azure {
                container: "c".into(),
                key: "k.tif".into()
            }
        );
        for bad in ["gs://b/../k.tif", "az://c/", "gs:///k.tif", "az://c/./k"] {
            assert!(sinks.resolve(bad).is_err(), "{bad}");
        }
    }
}

/// Azure Blob Storage against Azurite on loopback, started here. Skips with a message when
/// `azurite-blob` is missing: `$TESSERA_AZURITE_BLOB`, tests/.npm/node_modules/.bin (where
/// tests/run_all.sh installs it) or PATH.
mod azurite {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use base64::Engine as _;
    use hmac::{Hmac, Mac};

    use super::*;
    use crate::output::{AzureConfig, AZURITE_ACCOUNT, AZURITE_KEY};

    struct Azurite {
        child: Child,
        port: u16,
        _dir: tempfile::TempDir,
    }

    impl Drop for Azurite {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn binary() -> Option<PathBuf> {
        let candidates = [
            std::env::var("TESSERA_AZURITE_BLOB")
                .ok()
                .map(PathBuf::from),
            Some(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/.npm/node_modules/.bin/azurite-blob"),
            ),
        ];
        if let Some(found) = candidates.into_iter().flatten().find(|p| p.is_file()) {
            return Some(found);
        }
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("azurite-blob"))
                .find(|p| p.is_file())
        })
    }

    fn start() -> Option<Azurite> {
        let Some(exe) = binary() else {
            println!(
                "SKIPPED: azurite-blob not found; npm install --prefix tests/.npm azurite@3.37.0"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(&exe)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--silent", "--skipApiVersionCheck"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let azurite = Azurite {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not listen in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(azurite)
    }

    /// Create Container with a SharedKey-signed request written by hand, so the test does
    /// not depend on the client under test.
    fn create_container(port: u16, name: &str) {
        let date = "Wed, 25 Nov 2026 12:00:00 GMT";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-08-06\n\
             /{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(AZURITE_KEY)
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "PUT /{AZURITE_ACCOUNT}/{name}?restype=container HTTP/1.1\r\n\
             Host: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\nx-ms-version: 2021-08-06\r\n\
             Authorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn put_exists_list_and_read_back_on_azurite() {
        let Some(azurite) = start() else { return };
        create_container(azurite.port, "results");
        let endpoint = format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", azurite.port);
        let config = AzureConfig::from_vars(|name| match name {
            "TESSERA_AZURE_USE_EMULATOR" => Some("true".into()),
            "TESSERA_AZURE_ENDPOINT" => Some(endpoint.clone()),
            "TESSERA_AZURE_MAX_RETRIES" => Some("1".into()),
            _ => None,
        })
        .unwrap();
        let sinks = Sinks::new("/nonexistent-base").with_azure(config);
        let a = "az://results/req-1/31UDS_7_2/default.tif";
        let b = "az://results/req-1/31UDS_7_2/userdata.json";
        assert!(!sinks.exists(a).await.unwrap());
        let tiff: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        sinks.put(a, tiff.clone()).await.unwrap();
        sinks.put(b, b"{}".to_vec()).await.unwrap();
        assert!(sinks.exists(a).await.unwrap());
        assert_eq!(sinks.get(a).await.unwrap(), tiff);
        assert_eq!(
            sinks.list("az://results/req-1", 10).await.unwrap(),
            vec![a.to_string(), b.to_string()]
        );
        assert_eq!(sinks.list("az://results", 1).await.unwrap().len(), 1);
        let err = sinks
            .put("az://no-such-container/x.tif", vec![1])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("az://no-such-container/x.tif"), "{err}");
    }
}
