use std::fs;
use std::path::{Path, PathBuf};

use super::{write_atomic, Sinks, Target};
use crate::output::OutputError;

fn local(sinks: &Sinks, location: &str) -> PathBuf {
    match sinks.resolve(location) {
        Ok(Target::Local(path)) => path,
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
    assert!(unsupported_reason(&sinks, "out/..").contains("file name"));
    assert!(unsupported_reason(&sinks, "s3://bucket/").contains("file name"));
    assert!(unsupported_reason(&sinks, "gs://b/x.tif").contains("only local paths"));
    assert!(unsupported_reason(&sinks, "https://h/x.tif").contains("only local paths"));
    assert!(unsupported_reason(&sinks, "file://otherhost/x.tif").contains("file:///"));
    assert!(unsupported_reason(&sinks, "s3://bucket").contains("needs a key"));
    assert!(unsupported_reason(&sinks, "s3:///x.tif").contains("not a bucket name"));
    assert!(unsupported_reason(&sinks, "s3://../x.tif").contains("not a bucket name"));
    assert!(unsupported_reason(&sinks, "s3://b/a/../../x.tif").contains("'..'"));
    assert!(unsupported_reason(&sinks, "s3://b/./x.tif").contains("'..'"));
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
    let blocked = dir.path().join("blocker/sub");
    match &err {
        OutputError::Io { action, path, .. } => {
            assert_eq!(*action, "create directory");
            assert_eq!(path, &blocked);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(blocked.to_str().unwrap()), "{message}");
    assert!(message.contains("os error"), "{message}");
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
            assert_eq!(path, &dir.path().join("o/x.tif"));
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
    let path = dir.path().join("plain.bin");
    write_atomic(&path, &[1, 2, 3]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), vec![1, 2, 3]);
    assert_eq!(entries(dir.path()), vec!["plain.bin"]);
}
