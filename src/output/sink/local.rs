//! Local files under a root, opened one directory at a time without following symbolic
//! links (issue 12): the root is the operator's (opened like any path, created when
//! missing), every segment below it is the user's and is opened with `openat` and
//! `O_NOFOLLOW | O_DIRECTORY`, so there is no window between a check and an open in which
//! a planted symlink could redirect the write. The staging file is created and renamed
//! inside the directory descriptor it was checked in.
//!
//! Errors name the location as the user wrote it (`results/r/t/default.tif`), never the
//! host path of their folder.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::OutputError;

/// A local file: `root` (trusted) and the segments below it (untrusted, checked by
/// `confine`). See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    pub root: PathBuf,
    /// Directories then the file name; every one a valid segment.
    pub rel: Vec<String>,
    /// How many leading `rel` segments are the server's layout (`clients/<id>`, `s3`),
    /// left out of messages.
    pub hidden: usize,
    /// What messages show before the user's segments: `""`, `"s3://"`, `"/srv/out/"`.
    pub shown_prefix: String,
}

impl LocalTarget {
    /// The host path (tests and tools; the writer never opens it as one path).
    pub fn path(&self) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(&self.rel);
        p
    }

    /// The location of the first `upto` segments as the user sees it.
    fn shown(&self, upto: usize) -> PathBuf {
        let own = self.rel[self.hidden.min(upto)..upto].join("/");
        let shown = format!("{}{own}", self.shown_prefix);
        // The user's own folder itself.
        PathBuf::from(if shown.is_empty() { "." } else { &shown })
    }

    fn name(&self) -> &str {
        self.rel.last().map(String::as_str).unwrap_or_default()
    }

    fn error(&self, action: &'static str, upto: usize, error: std::io::Error) -> OutputError {
        OutputError::Io {
            action,
            path: self.shown(upto),
            error,
        }
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn is_symlink(at: &OwnedFd, name: &str) -> bool {
    rfs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// `O_NOFOLLOW | O_DIRECTORY` on a link answers `ELOOP` or `ENOTDIR`; say "symbolic link",
/// which is the point.
fn explain(errno: Errno, at: &OwnedFd, name: &str) -> std::io::Error {
    if matches!(errno, Errno::LOOP | Errno::NOTDIR) && is_symlink(at, name) {
        std::io::Error::other("it is a symbolic link, and outputs never follow symbolic links")
    } else {
        errno.into()
    }
}

/// Opens the root, then the first `dirs` segments as directories. With `create`, missing
/// ones are made; without, a missing one gives `None`.
fn open_dirs(
    target: &LocalTarget,
    dirs: usize,
    create: bool,
) -> Result<Option<OwnedFd>, OutputError> {
    let root_error = |e: std::io::Error| OutputError::Io {
        action: "open",
        path: target.shown(target.hidden.min(dirs)),
        error: e,
    };
    if create {
        std::fs::create_dir_all(&target.root).map_err(root_error)?;
    }
    let mut dir = match rfs::open(
        &target.root,
        DIR_FLAGS.difference(OFlags::NOFOLLOW),
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) if !create => return Ok(None),
        Err(e) => return Err(root_error(e.into())),
    };
    for (i, name) in target.rel[..dirs].iter().enumerate() {
        if create {
            match rfs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(target.error("create directory", i + 1, e.into())),
            }
        }
        dir = match rfs::openat(&dir, name.as_str(), DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if !create => return Ok(None),
            // A regular file in the way holds no outputs; a symlink is an error below.
            Err(Errno::NOTDIR) if !create && !is_symlink(&dir, name) => return Ok(None),
            Err(e) => {
                let action = if create { "create directory" } else { "open" };
                return Err(target.error(action, i + 1, explain(e, &dir, name)));
            }
        };
    }
    Ok(Some(dir))
}

/// Writes `.<name>.partial` in the file's directory, syncs it, renames it over the name,
/// then syncs the directory so the rename survives a power loss. Any old staging file is
/// removed first and the new one created exclusively, so a link planted under the staging
/// name is replaced, never written through.
pub fn write_atomic(target: &LocalTarget, bytes: &[u8]) -> Result<(), OutputError> {
    let n = target.rel.len();
    if n == 0 {
        let error = std::io::Error::new(ErrorKind::InvalidInput, "no file name");
        return Err(target.error("write", 0, error));
    }
    let dir = open_dirs(target, n - 1, true)?
        .ok_or_else(|| target.error("open", n - 1, std::io::Error::from(ErrorKind::NotFound)))?;
    let name = target.name();
    let staging = format!(".{name}.partial");
    let staging_error = |action, e: std::io::Error| OutputError::Io {
        action,
        path: target.shown(n - 1).join(&staging),
        error: e,
    };
    match rfs::unlinkat(&dir, staging.as_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(staging_error("remove", e.into())),
    }
    let written = (|| {
        let fd = rfs::openat(
            &dir,
            staging.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| staging_error("create", e.into()))?;
        let mut file = File::from(fd);
        file.write_all(bytes)
            .map_err(|e| staging_error("write", e))?;
        file.sync_all().map_err(|e| staging_error("sync", e))?;
        rfs::renameat(&dir, staging.as_str(), &dir, name)
            .map_err(|e| target.error("replace", n, e.into()))
    })();
    if written.is_err() {
        // Best effort: a leftover is harmless, the next attempt replaces it.
        let _ = rfs::unlinkat(&dir, staging.as_str(), AtFlags::empty());
    }
    written?;
    rfs::fsync(&dir).map_err(|e| target.error("sync directory", n - 1, e.into()))
}

/// Whether a regular file is at the target. A missing directory, a regular file where a
/// directory must be, or a link or directory at the name count as "no file" (a later
/// write reports the problem or replaces the link); a symlink where a directory must be is
/// an error naming it.
pub fn exists(target: &LocalTarget) -> Result<bool, OutputError> {
    let n = target.rel.len();
    let Some(dir) = open_dirs(target, n.saturating_sub(1), false)? else {
        return Ok(false);
    };
    match rfs::statat(&dir, target.name(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(FileType::from_raw_mode(st.st_mode) == FileType::RegularFile),
        Err(Errno::NOENT | Errno::NOTDIR) => Ok(false),
        Err(e) => Err(target.error("check", n, e.into())),
    }
}

/// The whole file, opened without following a link at its name.
pub fn read(target: &LocalTarget) -> Result<Vec<u8>, OutputError> {
    let n = target.rel.len();
    let missing = || target.error("read", n, std::io::Error::from(ErrorKind::NotFound));
    let dir = open_dirs(target, n.saturating_sub(1), false)?.ok_or_else(missing)?;
    let fd = rfs::openat(
        &dir,
        target.name(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| target.error("read", n, explain(e, &dir, target.name())))?;
    let mut bytes = Vec::new();
    File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(|e| target.error("read", n, e))?;
    Ok(bytes)
}

/// Up to `limit` regular files under the folder `target` (every `rel` segment a directory),
/// recursively, as `/`-joined paths relative to it; staging files are left out, symbolic
/// links are neither listed nor followed. A missing folder holds nothing.
pub fn list(target: &LocalTarget, limit: usize) -> Result<Vec<String>, OutputError> {
    let Some(top) = open_dirs(target, target.rel.len(), false)? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    let mut pending = vec![(top, String::new())];
    while let Some((dir, rel)) = pending.pop() {
        let shown = |e: std::io::Error| {
            let top = target.shown(target.rel.len());
            OutputError::Io {
                action: "list",
                path: if rel.is_empty() { top } else { top.join(&rel) },
                error: e,
            }
        };
        let entries = rfs::Dir::read_from(&dir).map_err(|e| shown(e.into()))?;
        for entry in entries {
            let entry = entry.map_err(|e| shown(e.into()))?;
            let Ok(name) = entry.file_name().to_str() else {
                // Not UTF-8: no output location can name it.
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                kind = match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => FileType::from_raw_mode(st.st_mode),
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(shown(e.into())),
                };
            }
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            match kind {
                FileType::Directory => match rfs::openat(&dir, name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => pending.push((fd, child)),
                    // Replaced since it was read: not ours to follow.
                    Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => {}
                    Err(e) => return Err(shown(e.into())),
                },
                FileType::RegularFile if !(name.starts_with('.') && name.ends_with(".partial")) => {
                    if found.len() >= limit {
                        return Ok(found);
                    }
                    found.push(child);
                }
                _ => {}
            }
        }
    }
    Ok(found)
}
