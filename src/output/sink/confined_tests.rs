//! Sinks confined to a client (issue 12) on a real file system: the client's folder, the
//! allowed prefixes, and symbolic or hard links planted where a write would go.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::{Sinks, Target};
use crate::output::confine::{parse_grant, Scope};
use crate::output::OutputError;

fn scope(grants: &[&str]) -> Scope {
    Scope {
        allowed: grants.iter().map(|g| parse_grant(g).unwrap()).collect(),
    }
}

fn client(base: &Path, id: &str, grants: &[&str]) -> Sinks {
    Sinks::new(base).for_client(id, scope(grants)).unwrap()
}

fn refused(result: Result<Target, OutputError>) -> String {
    match result {
        Err(OutputError::Refused { reason, .. }) => reason,
        other => panic!("expected Refused, got {other:?}"),
    }
}

/// Every file under `dir` (not following links), relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                pending.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn relative_paths_land_in_the_clients_own_folder() {
    let base = tempfile::tempdir().unwrap();
    let a = client(base.path(), "client-a", &[]);
    let b = client(base.path(), "client-b", &[]);
    a.put("run/t/default.tif", b"a".to_vec()).await.unwrap();
    b.put("run/t/default.tif", b"b".to_vec()).await.unwrap();
    assert_eq!(
        fs::read(base.path().join("clients/client-a/run/t/default.tif")).unwrap(),
        b"a"
    );
    assert_eq!(
        fs::read(base.path().join("clients/client-b/run/t/default.tif")).unwrap(),
        b"b"
    );
    assert_eq!(a.get("run/t/default.tif").await.unwrap(), b"a");
    assert!(a.exists("run/t/default.tif").await.unwrap());
    assert_eq!(
        a.list("run", 10).await.unwrap(),
        vec!["run/t/default.tif".to_string()]
    );
    assert_eq!(a.relative_root(), base.path().join("clients/client-a"));
    // B's folder is not reachable from A by any relative spelling.
    for escape in [
        "../client-b/run/t/default.tif",
        "..%2fclient-b/x",
        "%2e%2e/client-b/x",
        "/clients/client-b/x",
    ] {
        assert!(a.resolve(escape).is_err(), "{escape}");
    }
    assert_eq!(
        tree(base.path()),
        vec![
            "clients/client-a/run/t/default.tif",
            "clients/client-b/run/t/default.tif"
        ]
    );
}

#[tokio::test]
async fn absolute_paths_need_an_allowed_prefix_which_becomes_the_root() {
    let base = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let allowed = outside.path().join("allowed");
    let a = client(base.path(), "a", &[allowed.to_str().unwrap()]);
    let other = outside.path().join("other/x.tif");
    let reason = refused(a.resolve(other.to_str().unwrap()));
    assert!(reason.contains("absolute"), "{reason}");
    let url = format!("file://{}", other.display());
    assert!(refused(a.resolve(&url)).contains("absolute"));
    assert!(refused(a.resolve("/etc/profile.d/1.sh")).contains("absolute"));

    let inside = allowed.join("r/x.tif");
    match a.resolve(inside.to_str().unwrap()).unwrap() {
        Target::Local(t) => {
            assert_eq!(t.root, allowed);
            assert_eq!(t.rel, vec!["r", "x.tif"]);
        }
        other => panic!("{other:?}"),
    }
    a.put(inside.to_str().unwrap(), b"ok".to_vec())
        .await
        .unwrap();
    assert_eq!(fs::read(&inside).unwrap(), b"ok");
    // A prefix that only shares leading characters is not the prefix.
    let sibling = outside.path().join("allowed-not/x.tif");
    assert!(refused(a.resolve(sibling.to_str().unwrap())).contains("absolute"));
}

#[tokio::test]
async fn a_symlink_in_the_clients_folder_fails_the_write_instead_of_following() {
    let base = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let a = client(base.path(), "a", &[]);
    fs::create_dir_all(base.path().join("clients/a")).unwrap();
    symlink(outside.path(), base.path().join("clients/a/link")).unwrap();
    let err = a
        .put("link/x.tif", b"evil".to_vec())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert!(err.contains("cannot create directory link:"), "{err}");
    assert!(!err.contains(base.path().to_str().unwrap()), "{err}");
    // Deeper down too.
    fs::create_dir_all(base.path().join("clients/a/d/e")).unwrap();
    symlink(outside.path(), base.path().join("clients/a/d/e/f")).unwrap();
    let err = a.put("d/e/f/g/x.tif", vec![1]).await.unwrap_err();
    assert!(err.to_string().contains("d/e/f"), "{err}");
    // Not followed for reading, checking or listing either: an error naming the link,
    // and a listing of the folder above skips it.
    fs::write(outside.path().join("secret.tif"), b"secret").unwrap();
    for err in [
        a.exists("link/secret.tif").await.unwrap_err(),
        a.get("link/secret.tif").await.unwrap_err(),
        a.list("link", 10).await.unwrap_err(),
    ] {
        let err = err.to_string();
        assert!(
            err.contains("cannot open link: it is a symbolic link"),
            "{err}"
        );
    }
    assert!(a.list("", 10).await.unwrap().is_empty());
    assert_eq!(tree(outside.path()), vec!["secret.tif"]);
}

#[tokio::test]
async fn a_link_at_the_file_or_staging_name_is_replaced_never_written_through() {
    let base = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let a = client(base.path(), "a", &[]);
    let dir = base.path().join("clients/a/o");
    fs::create_dir_all(&dir).unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    symlink(&victim, dir.join("x.tif")).unwrap();
    symlink(&victim, dir.join(".y.tif.partial")).unwrap();
    // A hard link (same file system) under the staging name.
    let hard_victim = base.path().join("hard-victim");
    fs::write(&hard_victim, b"also precious").unwrap();
    fs::hard_link(&hard_victim, dir.join(".z.tif.partial")).unwrap();
    assert!(
        !a.exists("o/x.tif").await.unwrap(),
        "a link is not an output"
    );
    for name in ["x.tif", "y.tif", "z.tif"] {
        a.put(&format!("o/{name}"), b"new".to_vec()).await.unwrap();
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"new");
        assert!(!fs::symlink_metadata(dir.join(name))
            .unwrap()
            .file_type()
            .is_symlink());
    }
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(fs::read(&hard_victim).unwrap(), b"also precious");
}

#[tokio::test]
async fn the_s3_standin_needs_a_grant_and_cannot_be_escaped() {
    let base = tempfile::tempdir().unwrap();
    let a = client(base.path(), "a", &["s3://mine/team"]);
    assert!(refused(a.resolve("s3://theirs/x.tif")).contains("not granted"));
    assert!(refused(a.resolve("s3://mine/other/x.tif")).contains("not granted"));
    for escape in [
        "s3://mine//tmp/x",
        "s3://mine/team/../../x",
        "s3://mine/team/%2e%2e/x",
        "s3://mine/team/..%2f..%2fx",
    ] {
        match a.resolve(escape) {
            Err(OutputError::UnsupportedLocation { .. }) => {}
            other => panic!("{escape}: {other:?}"),
        }
    }
    a.put("s3://mine/team/r/x.tif", b"s".to_vec())
        .await
        .unwrap();
    assert_eq!(
        fs::read(base.path().join("s3/mine/team/r/x.tif")).unwrap(),
        b"s"
    );
    assert_eq!(
        a.list("s3://mine/team", 10).await.unwrap(),
        vec!["s3://mine/team/r/x.tif".to_string()]
    );
    // Listing outside the grant is refused, not answered.
    assert!(a.list("s3://mine", 10).await.is_err());
    assert!(a.list("/proc/1", 10).await.is_err());
    // A symlinked bucket folder in the stand-in is not followed.
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), base.path().join("s3/linked")).unwrap();
    let b = client(base.path(), "b", &["s3://linked"]);
    let err = b.put("s3://linked/x.tif", vec![1]).await.unwrap_err();
    assert!(err.to_string().contains("s3://linked"), "{err}");
    assert!(tree(outside.path()).is_empty());
}

#[test]
fn a_client_id_must_be_one_segment() {
    for bad in ["", "..", "a/b", "a\0"] {
        assert!(
            Sinks::new("/base")
                .for_client(bad, Scope::default())
                .is_err(),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn the_longest_accepted_name_can_be_written_atomically() {
    let base = tempfile::tempdir().unwrap();
    let a = client(base.path(), "a", &[]);
    let name = "x".repeat(crate::output::confine::MAX_SEGMENT_BYTES);
    a.put(&format!("o/{name}"), b"1".to_vec()).await.unwrap();
    assert_eq!(a.get(&format!("o/{name}")).await.unwrap(), b"1");
    let longer = format!("o/{name}y");
    assert!(matches!(
        a.resolve(&longer),
        Err(OutputError::UnsupportedLocation { .. })
    ));
}
