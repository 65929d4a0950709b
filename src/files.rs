//! Everything the server writes is private to its user: files are created 0600 and
//! directories 0700 whatever the umask it was started with (the children get that
//! umask back), and a data directory that others could read is tightened, or
//! refused when it is not this user's own (a shared directory such as `/tmp`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::stat::{umask, Mode};

/// The umask the server was started with, restored in every child before exec.
static INHERITED_UMASK: AtomicU32 = AtomicU32::new(0o022);

/// Makes every file and directory the server creates from now on private.
pub fn make_private() {
    let old = umask(Mode::from_bits_truncate(0o077));
    // Called once at start; a second call must not record the private umask as inherited.
    if old.bits() != 0o077 {
        INHERITED_UMASK.store(old.bits(), Ordering::Relaxed);
    }
}

/// The umask children run with (the one the server was started with).
#[must_use]
pub fn child_umask() -> Mode {
    Mode::from_bits_truncate(INHERITED_UMASK.load(Ordering::Relaxed))
}

/// Why a data directory is refused.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "data directory {path} belongs to another user (uid {owner}); give switchboard a directory of its own with --data-dir"
    )]
    NotOurs { path: String, owner: u32 },
    #[error(
        "data directory {path} is a shared directory (mode {mode:o}); give switchboard a directory of its own with --data-dir"
    )]
    Shared { path: String, mode: u32 },
    #[error("data directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Checks the data directory and tightens what others could read in it (the
/// directory, the files at its top and the transcripts); returns what it changed.
///
/// # Errors
/// The directory is another user's, or shared (sticky bit), or cannot be read.
pub fn secure_data_dir(dir: &Path) -> Result<Vec<PathBuf>, DataDirError> {
    let io = |source| DataDirError::Io { path: dir.display().to_string(), source };
    let meta = fs::metadata(dir).map_err(io)?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(DataDirError::NotOurs { path: dir.display().to_string(), owner: meta.uid() });
    }
    if meta.mode() & 0o1000 != 0 {
        return Err(DataDirError::Shared { path: dir.display().to_string(), mode: meta.mode() & 0o7777 });
    }
    let mut tightened = Vec::new();
    tighten(dir, &meta, &mut tightened).map_err(io)?;
    for folder in [dir.to_path_buf(), dir.join("transcripts")] {
        let Ok(entries) = fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(meta) = fs::symlink_metadata(&path) {
                if meta.is_file() || meta.is_dir() {
                    tighten(&path, &meta, &mut tightened).map_err(io)?;
                }
            }
        }
    }
    Ok(tightened)
}

fn tighten(path: &Path, meta: &fs::Metadata, changed: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 == 0 || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
    changed.push(path.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_others_could_read_is_tightened_and_a_shared_directory_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        fs::create_dir_all(dir.join("transcripts")).expect("dirs");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::write(dir.join("agents.db"), b"x").expect("file");
        fs::set_permissions(dir.join("agents.db"), fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::write(dir.join("transcripts/a.log"), b"x").expect("file");
        fs::set_permissions(dir.join("transcripts/a.log"), fs::Permissions::from_mode(0o644)).expect("chmod");
        let changed = secure_data_dir(&dir).expect("secured");
        assert_eq!(changed.len(), 4, "{changed:?}");
        let mode = |p: &Path| fs::metadata(p).expect("meta").mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("agents.db")), 0o600);
        assert_eq!(mode(&dir.join("transcripts/a.log")), 0o600);
        assert!(secure_data_dir(&dir).expect("again").is_empty());

        let shared = root.path().join("shared");
        fs::create_dir(&shared).expect("dir");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).expect("chmod");
        assert!(matches!(secure_data_dir(&shared), Err(DataDirError::Shared { .. })));
        assert_eq!(mode(&shared), 0o777, "a refused directory is left as it was");
    }
}
