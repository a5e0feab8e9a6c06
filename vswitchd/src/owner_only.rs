//! Files and unix sockets that only their owner can reach, from their first instant.
//!
//! What: the API socket, the store and the copies `--repair` keeps are the switch's keys;
//! anyone who can connect to the socket or write the store can reprogram it. Creating a
//! socket and restricting it afterwards leaves a window (a client started under `umask 000`
//! connected in it), so nothing here ever exists with wider permissions:
//!
//! - [`bind_unix`] binds the socket inside a fresh directory only the owner can enter
//!   (`mkdtemp`, 0700), restricts it to 0600 there, then links it into place (atomic; a
//!   stale socket is replaced by a rename, a live one never) and checks the result: a socket, owned by us, 0600, in a
//!   directory nobody else may write to (or with the sticky bit).
//! - [`create_file`] creates a file with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600: the
//!   kernel applies the mode at creation, so the umask can only narrow it.
//! - [`create_dir_all`] creates missing directories with an explicit mode (never 0777 under
//!   a careless umask).
//!
//! Every further socket or file the daemon creates (an OpenFlow `punix:` listener, a
//! metrics socket) must use these functions. The Docker plugin, which cannot import the
//! daemon, binds its socket the same way in `docker/src/server.rs` (inside a fresh 0700
//! directory, restricted there, then renamed into place).
//!
//! Thread-safety: plain functions; nothing here touches the process umask.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Mode of directories this module creates: others may look, only the owner may change.
pub const DIR_MODE: u32 = 0o755;
/// Mode of every socket and file this module creates.
pub const FILE_MODE: u32 = 0o600;
/// Longest unix socket path (`sun_path` holds 108 bytes with the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Creates `dir` and its missing parents with mode [`DIR_MODE`] (narrowed by the umask,
/// never widened).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Creates a new file readable and writable by its owner only; fails if `path` exists (a
/// symlink included).
pub fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// Checks that nobody but us (and root) can replace entries of `dir`: it is owned by us or
/// root, and not writable by group or others unless the sticky bit stops them renaming or
/// removing what we own.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let m = std::fs::metadata(dir)?;
    let me = nix::unistd::geteuid().as_raw();
    let open_to_others = m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
    if (m.uid() != me && m.uid() != 0) || open_to_others {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} (mode {:o}, owner uid {}) lets other users replace what is in it; use a \
                 directory only its owner (or root) may write to",
                dir.display(),
                m.mode() & 0o7777,
                m.uid()
            ),
        ));
    }
    Ok(())
}

/// Checks that `path` is a socket or a regular file owned by us whose mode grants nothing
/// to group or others.
pub fn check_owner_only(path: &Path) -> io::Result<()> {
    let m = std::fs::symlink_metadata(path)?;
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me || m.mode() & 0o077 != 0 || m.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is mode {:o} owned by uid {} (expected {:o}, uid {me})",
                path.display(),
                m.mode() & 0o7777,
                m.uid(),
                FILE_MODE
            ),
        ));
    }
    Ok(())
}

/// The file of a socket bound with [`bind_unix`]; [`SocketFile::remove`] deletes it only
/// while it is still the one we bound (a successor's socket is left alone).
#[derive(Debug, Clone)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file if it is still ours.
    pub fn remove(&self) {
        remove_if_ours(&self.path, self.dev, self.ino);
    }
}

fn remove_if_ours(path: &Path, dev: u64, ino: u64) {
    if let Ok(m) = std::fs::symlink_metadata(path)
        && m.dev() == dev
        && m.ino() == ino
    {
        let _ = std::fs::remove_file(path);
    }
}

/// Binds a unix socket at `path` that only its owner can connect to at any instant.
///
/// Missing parent directories are created (mode [`DIR_MODE`]). A live socket at `path` (one
/// that accepts a connection) is never replaced: that is another daemon's. A stale socket
/// is replaced atomically. Anything else at `path` (a file, a directory) is refused. The
/// listener is blocking (for tokio: `set_nonblocking(true)`, then `from_std`).
pub fn bind_unix(path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let name = path
        .file_name()
        .ok_or_else(|| invalid(format!("{}: no file name", path.display())))?;
    create_dir_all(dir).map_err(|e| annotate(e, format!("creating {}", dir.display())))?;
    check_dir(dir)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use: another process is listening there",
                        path.display()
                    ),
                ));
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(annotate(e, format!("checking {}", path.display()))),
    }
    // A private directory next to the target (same file system, so the rename is atomic).
    let template = dir.join(".vsXXXXXX");
    let private = nix::unistd::mkdtemp(&template).map_err(|e| {
        annotate(
            e.into(),
            format!("creating a directory in {}", dir.display()),
        )
    })?;
    let result = bind_in(&private, name.as_ref(), path);
    let _ = std::fs::remove_dir(&private);
    result
}

fn bind_in(private: &Path, name: &Path, path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    // The directory was created 0700 by mkdtemp; make sure of it before trusting it.
    let m = std::fs::metadata(private)?;
    if m.mode() & 0o077 != 0 {
        return Err(invalid(format!(
            "{} was created mode {:o}",
            private.display(),
            m.mode() & 0o777
        )));
    }
    let tmp = private.join(name);
    if tmp.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(invalid(format!(
            "{}: the socket path is too long to bind privately (at most {} bytes with its \
             temporary directory); use a shorter path",
            path.display(),
            MAX_SOCKET_PATH - (tmp.as_os_str().len() - path.as_os_str().len())
        )));
    }
    let listener =
        UnixListener::bind(&tmp).map_err(|e| annotate(e, format!("binding {}", path.display())))?;
    let cleanup = |e: io::Error| {
        let _ = std::fs::remove_file(&tmp);
        e
    };
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(FILE_MODE)).map_err(cleanup)?;
    // A link never replaces anything; only a socket found stale (no listener) is replaced.
    match std::fs::hard_link(&tmp, path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let socket = std::fs::symlink_metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
            if !socket || UnixStream::connect(path).is_ok() {
                return Err(cleanup(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use: another process is listening there",
                        path.display()
                    ),
                )));
            }
            std::fs::rename(&tmp, path).map_err(|e| {
                cleanup(annotate(
                    e,
                    format!("moving the socket to {}", path.display()),
                ))
            })?;
        }
        Err(e) => {
            return Err(cleanup(annotate(
                e,
                format!("moving the socket to {}", path.display()),
            )));
        }
    }
    let _ = std::fs::remove_file(&tmp);
    let m = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
    };
    if let Err(e) = check_owner_only(path) {
        file.remove();
        return Err(e);
    }
    Ok((listener, file))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn annotate(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_owner_only_whatever_the_umask_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let s = bind_unix(&path).unwrap();
        let m = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        // No private directory is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Live: refused.
        let e = bind_unix(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        // Stale (the listener is gone): replaced.
        drop(s);
        let (_l, f) = bind_unix(&path).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        f.remove();
        assert!(!path.exists());
    }

    #[test]
    fn a_regular_file_is_never_replaced_and_open_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes");
        std::fs::write(&path, b"keep me").unwrap();
        let e = bind_unix(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = bind_unix(&open.join("s")).unwrap_err();
        assert!(e.to_string().contains("other users"), "{e}");
        // Sticky (like /tmp): fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        bind_unix(&open.join("s")).unwrap().1.remove();
    }

    #[test]
    fn a_successors_socket_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let (_l1, first) = bind_unix(&path).unwrap();
        // A successor took the path over (as after a stale-socket replacement).
        std::fs::remove_file(&path).unwrap();
        let (_l2, second) = bind_unix(&path).unwrap();
        first.remove();
        assert!(UnixStream::connect(&path).is_ok());
        second.remove();
    }

    #[test]
    fn files_are_created_owner_only_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        drop(create_file(&f).unwrap());
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            create_file(&f).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        assert!(create_file(&link).is_err());
        assert!(!dir.path().join("target").exists());
        check_owner_only(&f).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_owner_only(&f).is_err());
    }

    #[test]
    fn new_directories_get_an_explicit_mode() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b");
        create_dir_all(&d).unwrap();
        for p in [dir.path().join("a"), d] {
            assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777 & !0o755, 0);
        }
    }
}
