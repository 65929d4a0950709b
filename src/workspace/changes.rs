//! Reading what an instance changed: a snapshot of its worktree through a
//! temporary index, diffed against the commit its branch started from.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{git, run, Workspace, WorkspaceError};

/// Longest diff returned; a longer one is cut and marked `truncated`.
pub const MAX_DIFF_BYTES: u64 = 2 * 1024 * 1024;

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChangedFile {
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed`, `copied` or `type_changed`.
    pub status: String,
    /// Lines added; null for a binary file.
    pub additions: Option<u64>,
    /// Lines deleted; null for a binary file.
    pub deletions: Option<u64>,
    pub binary: bool,
}

/// Everything an instance changed relative to its base.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Changes {
    pub base_commit: String,
    pub head_commit: String,
    pub branch: String,
    pub files: Vec<ChangedFile>,
    /// The unified diff (binary files named, not inlined).
    pub diff: String,
    /// The diff was longer than the cap and was cut.
    pub truncated: bool,
}

/// A git command that sees the worktree through a temporary index holding every
/// file in it (tracked, edited and untracked alike, `.gitignore` respected).
struct Snapshot {
    dir: PathBuf,
    /// Removed when the snapshot is dropped.
    index: PathBuf,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.index);
    }
}

impl Snapshot {
    fn take(dir: &Path) -> Result<Self, WorkspaceError> {
        let index = std::env::temp_dir().join(format!("switchboard-index-{}", Uuid::new_v4()));
        let snapshot = Snapshot { dir: dir.to_owned(), index };
        let mut read = snapshot.git();
        read.args(["read-tree", "HEAD"]);
        run(read)?;
        let mut add = snapshot.git();
        add.args(["add", "--all", "--", "."]);
        run(add)?;
        Ok(snapshot)
    }

    fn git(&self) -> Command {
        let mut cmd = git(&self.dir);
        cmd.env("GIT_INDEX_FILE", &self.index);
        cmd
    }
}

/// The changes in the worktree at `ws.path` since `ws.base_commit`: its commits,
/// its uncommitted edits and its untracked files.
///
/// # Errors
/// The worktree is gone or git fails.
pub fn changes(ws: &Workspace) -> Result<Changes, WorkspaceError> {
    let dir = Path::new(&ws.path);
    if !dir.is_dir() {
        return Err(WorkspaceError::Git(format!("the worktree {} no longer exists", ws.path)));
    }
    let base = ws.base_commit.clone().ok_or_else(|| WorkspaceError::Git("the worktree was not made yet".into()))?;
    let mut head = git(dir);
    head.args(["rev-parse", "HEAD"]);
    let head_commit = run(head)?;
    let snapshot = Snapshot::take(dir)?;
    let mut numstat = snapshot.git();
    numstat.args(["diff", "--cached", "--no-renames", "--numstat", "-z", &base]);
    let counts = run(numstat)?;
    let mut names = snapshot.git();
    names.args(["diff", "--cached", "--no-renames", "--name-status", "-z", &base]);
    let statuses = run(names)?;
    let mut files = parse_name_status(&statuses);
    for (path, added, deleted) in parse_numstat(&counts) {
        if let Some(file) = files.iter_mut().find(|f| f.path == path) {
            file.binary = added.is_none();
            (file.additions, file.deletions) = (added, deleted);
        }
    }
    let mut patch = snapshot.git();
    patch.args(["diff", "--cached", "--no-renames", "--no-color", "--no-ext-diff", &base]);
    let (diff, truncated) = capped(patch, MAX_DIFF_BYTES)?;
    Ok(Changes { base_commit: base, head_commit, branch: ws.branch.clone(), files, diff, truncated })
}

/// Runs `cmd`, keeping at most `cap` bytes of its output.
fn capped(mut cmd: Command, cap: u64) -> Result<(String, bool), WorkspaceError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| WorkspaceError::Git(format!("cannot run git: {e}")))?;
    let mut kept = Vec::new();
    let mut truncated = false;
    if let Some(out) = child.stdout.take() {
        let mut out = out.take(cap + 1);
        out.read_to_end(&mut kept).map_err(|e| WorkspaceError::Git(e.to_string()))?;
        if kept.len() as u64 > cap {
            truncated = true;
            kept.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
            // Stop git rather than read the rest.
            let _ = child.kill();
        }
    }
    let status = child.wait().map_err(|e| WorkspaceError::Git(e.to_string()))?;
    if !status.success() && !truncated {
        return Err(WorkspaceError::Git(format!("git diff failed ({status})")));
    }
    Ok((String::from_utf8_lossy(&kept).into_owned(), truncated))
}

fn parse_name_status(text: &str) -> Vec<ChangedFile> {
    let mut parts = text.split('\0').filter(|p| !p.is_empty());
    let mut files = Vec::new();
    while let (Some(code), Some(path)) = (parts.next(), parts.next()) {
        let status = match code.chars().next() {
            Some('A') => "added",
            Some('D') => "deleted",
            Some('R') => "renamed",
            Some('C') => "copied",
            Some('T') => "type_changed",
            _ => "modified",
        };
        files.push(ChangedFile {
            path: path.to_owned(),
            status: status.to_owned(),
            additions: Some(0),
            deletions: Some(0),
            binary: false,
        });
    }
    files
}

fn parse_numstat(text: &str) -> Vec<(String, Option<u64>, Option<u64>)> {
    text.split('\0')
        .filter(|p| !p.is_empty())
        .filter_map(|entry| {
            let mut fields = entry.splitn(3, '\t');
            let (added, deleted, path) = (fields.next()?, fields.next()?, fields.next()?);
            Some((path.to_owned(), added.parse().ok(), deleted.parse().ok()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_past_the_cap_is_cut_and_marked() {
        let repo = super::super::tests::repo();
        let (diff, truncated) = capped(
            {
                let mut c = git(repo.path());
                c.args(["log", "-p"]);
                c
            },
            10,
        )
        .expect("capped");
        assert!(truncated && diff.len() == 10);
    }
}
