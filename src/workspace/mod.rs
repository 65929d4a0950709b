//! Workspaces: a git worktree per instance, made, read and removed with the `git`
//! program (worktrees share the repository's object store, so nothing is copied).
//!
//! Every function here is blocking and runs `git`: call them off the async
//! workers. Nothing here touches the user's own checkout beyond what `git
//! worktree` itself records in the repository: the changes of a worktree are read
//! through a temporary index, never the worktree's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use crate::domain::instance::Workspace;
pub use changes::{changes, ChangedFile, Changes, MAX_DIFF_BYTES};

mod changes;
use uuid::Uuid;

/// Why a workspace could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0} is not a git repository")]
    NotARepository(String),
    #[error("the repository at {0} has no commits yet; commit something first")]
    NoCommits(String),
    #[error("base {0:?} is not a commit in the repository")]
    UnknownBase(String),
    #[error("git failed: {0}")]
    Git(String),
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    // Never ask anyone anything, never page, never read the caller's locale.
    cmd.env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C").env_remove("GIT_INDEX_FILE").env_remove("GIT_DIR");
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs a git command; its stdout, or its stderr as the error.
fn run(mut cmd: Command) -> Result<String, WorkspaceError> {
    let out = cmd.output().map_err(|e| WorkspaceError::Git(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    } else {
        Err(WorkspaceError::Git(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

/// The commit `base` (or `HEAD`) names in the repository at `project`.
///
/// # Errors
/// Not a repository, no commits, or a base that names no commit.
pub fn resolve(project: &Path, base: Option<&str>) -> Result<String, WorkspaceError> {
    let shown = project.display().to_string();
    let mut top = git(project);
    top.args(["rev-parse", "--show-toplevel"]);
    if !project.is_dir() || run(top).is_err() {
        return Err(WorkspaceError::NotARepository(shown));
    }
    let mut head = git(project);
    head.args(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]);
    if run(head).is_err() {
        return Err(WorkspaceError::NoCommits(shown));
    }
    let base = base.unwrap_or("HEAD");
    let mut commit = git(project);
    commit.args(["rev-parse", "--verify", "--quiet", "--end-of-options", &format!("{base}^{{commit}}")]);
    run(commit).map_err(|_| WorkspaceError::UnknownBase(base.to_owned()))
}

/// The branch name for an instance of `agent` (its name made safe for a ref).
#[must_use]
pub fn branch_name(agent: &str, instance: Uuid) -> String {
    let mut safe: String =
        agent.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '-' }).collect();
    safe = safe.trim_matches('-').to_owned();
    if safe.is_empty() {
        safe = "agent".to_owned();
    }
    let short = &instance.simple().to_string()[..8];
    format!("switchboard/{safe}/{short}")
}

/// Checking out thousands of files is mostly waiting on the file system: git's
/// parallel checkout with one worker per core cuts it to about a third here.
const PARALLEL_CHECKOUT: &str = "checkout.workers=0";

fn make_parent(path: &Path) -> Result<(), WorkspaceError> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| WorkspaceError::Git(format!("cannot make {}: {e}", parent.display()))),
        None => Ok(()),
    }
}

/// Makes the worktree of `planned` at its path, on a new branch from its base
/// (resolved now); returns it with `base_commit` set. With a `spare` worktree of
/// the same repository (see [`make_spare`]), the spare is moved into place and
/// switched to the branch, which changes only the files that differ: no checkout
/// of the whole tree while the instance waits.
///
/// # Errors
/// The base no longer resolves, or git refuses (e.g. the branch exists).
pub fn create(planned: &Workspace, spare: Option<&Path>) -> Result<Workspace, WorkspaceError> {
    let project = Path::new(&planned.repository);
    let commit = resolve(project, Some(&planned.base_ref))?;
    make_parent(Path::new(&planned.path))?;
    if let Some(spare) = spare.filter(|s| repository_of(s).as_deref() == Some(planned.repository.as_str())) {
        let mut take = git(project);
        take.args(["worktree", "move"]).arg(spare).arg(&planned.path);
        // Taken by another start at the same moment, or unusable: make one instead.
        if run(take).is_ok() {
            return match onto_branch(Path::new(&planned.path), &planned.branch, &commit) {
                Ok(()) => Ok(Workspace { base_commit: Some(commit), ..planned.clone() }),
                Err(e) => {
                    let _ = remove_directory(Path::new(&planned.path));
                    Err(e)
                }
            };
        }
    }
    let mut add = git(project);
    add.args(["-c", PARALLEL_CHECKOUT, "worktree", "add", "--quiet", "-b", &planned.branch, &planned.path, &commit]);
    run(add)?;
    Ok(Workspace { base_commit: Some(commit), ..planned.clone() })
}

/// Puts a (detached) worktree on a new branch at `commit`. At the commit it is on
/// already (the usual case: the spare was made from the same `HEAD`), the branch is
/// made and `HEAD` pointed at it, and no file is looked at; otherwise git checks
/// out what differs.
fn onto_branch(dir: &Path, branch: &str, commit: &str) -> Result<(), WorkspaceError> {
    let mut head = git(dir);
    head.args(["rev-parse", "HEAD"]);
    if run(head).is_ok_and(|at| at == commit) {
        let mut make = git(dir);
        make.args(["branch", "--no-track", branch, commit]);
        run(make)?;
        let mut point = git(dir);
        point.args(["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")]);
        run(point)?;
        return Ok(());
    }
    let mut switch = git(dir);
    switch.args(["-c", PARALLEL_CHECKOUT, "checkout", "--quiet", "-b", branch, commit]);
    run(switch).map(|_| ())
}

/// Keeps an agent's spare worktree as its settings want it: made (`wanted`), or
/// removed (not wanted, or made from another repository than `repository`).
/// Failures are logged: a missing spare only makes the next start slower.
pub fn keep_spare(spare: &Path, repository: &Path, wanted: bool) {
    let stale = repository_of(spare).is_some_and(|r| Path::new(&r) != repository);
    if spare.exists() && (!wanted || stale) {
        if let Err(e) = remove_directory(spare) {
            tracing::warn!(spare = %spare.display(), error = %e, "cannot remove a spare worktree");
        }
    }
    if wanted {
        if let Err(e) = make_spare(repository, spare) {
            tracing::warn!(spare = %spare.display(), error = %e, "cannot make a spare worktree");
        }
    }
}

/// Where an agent's spare worktree lives.
#[must_use]
pub fn spare_path(root: &Path, agent: Uuid) -> PathBuf {
    root.join(".spare").join(agent.to_string())
}

/// Makes a spare worktree of `repository` at `spare` (detached at `HEAD`) unless
/// one is there, so the next instance starts without waiting for a checkout. It
/// is made under another name and moved into place, so a half-made spare is never
/// taken.
///
/// # Errors
/// Git refuses.
pub fn make_spare(repository: &Path, spare: &Path) -> Result<(), WorkspaceError> {
    if spare.exists() {
        return Ok(());
    }
    make_parent(spare)?;
    let making = spare.with_file_name(format!(".making-{}", Uuid::new_v4()));
    let mut add = git(repository);
    add.args(["-c", PARALLEL_CHECKOUT, "worktree", "add", "--quiet", "--detach"]).arg(&making).arg("HEAD");
    run(add)?;
    let mut settle = git(repository);
    settle.args(["worktree", "move"]).arg(&making).arg(spare);
    if let Err(e) = run(settle) {
        // Another was made meanwhile: this one is not needed.
        let _ = remove_directory(&making);
        if !spare.exists() {
            return Err(e);
        }
    }
    Ok(())
}

/// What removing the worktree would lose: uncommitted and untracked files, and
/// commits on its branch that no other branch holds. Empty: nothing.
///
/// # Errors
/// Git fails on a worktree that exists.
pub fn unsaved(ws: &Workspace) -> Result<Vec<String>, WorkspaceError> {
    let mut lost = Vec::new();
    let dir = Path::new(&ws.path);
    if dir.is_dir() {
        let mut status = git(dir);
        status.args(["status", "--porcelain=v1", "-z", "--untracked-files=all"]);
        for entry in run(status)?.split('\0').filter(|e| e.len() > 3) {
            lost.push(format!("{} (uncommitted)", &entry[3..]));
        }
    }
    let project = Path::new(&ws.repository);
    let branch = format!("refs/heads/{}", ws.branch);
    let mut exists = git(project);
    exists.args(["rev-parse", "--verify", "--quiet", &branch]);
    if run(exists).is_ok() {
        let mut commits = git(project);
        commits.args(["log", "--format=%h %s", &branch, "--not", &format!("--exclude={}", ws.branch), "--branches"]);
        for line in run(commits)?.lines().filter(|l| !l.is_empty()) {
            lost.push(format!("commit {line}"));
        }
    }
    Ok(lost)
}

/// Removes the worktree and its branch (whatever they hold).
///
/// # Errors
/// Git refuses to remove them.
pub fn remove(ws: &Workspace) -> Result<(), WorkspaceError> {
    let project = Path::new(&ws.repository);
    if Path::new(&ws.path).exists() {
        let mut worktree = git(project);
        worktree.args(["worktree", "remove", "--force", "--force", &ws.path]);
        if let Err(e) = run(worktree) {
            // Not (or no longer) registered: the directory is ours all the same.
            std::fs::remove_dir_all(&ws.path).map_err(|io| WorkspaceError::Git(format!("{e}; {io}")))?;
        }
    }
    prune(project);
    let mut branch = git(project);
    branch.args(["branch", "-D", "--quiet", &ws.branch]);
    match run(branch) {
        Ok(_) => Ok(()),
        Err(WorkspaceError::Git(e)) if e.contains("not found") => Ok(()),
        Err(e) => Err(e),
    }
}

/// The repository a worktree directory belongs to, read from its `.git` file.
#[must_use]
pub fn repository_of(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".git")).ok()?;
    let gitdir = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
    // <repository>/.git/worktrees/<name>
    let dot_git = gitdir.parent()?.parent()?;
    Some(dot_git.parent().unwrap_or(dot_git).display().to_string())
}

/// The branch checked out in a worktree directory.
#[must_use]
pub fn branch_of(dir: &Path) -> Option<String> {
    let mut head = git(dir);
    head.args(["symbolic-ref", "--quiet", "--short", "HEAD"]);
    run(head).ok().filter(|b| !b.is_empty())
}

/// Removes a worktree directory (unregistering it from its repository when git
/// still knows it); its branch is kept.
///
/// # Errors
/// The directory cannot be removed.
pub fn remove_directory(dir: &Path) -> Result<(), WorkspaceError> {
    if let Some(repository) = repository_of(dir) {
        let mut worktree = git(Path::new(&repository));
        worktree.args(["worktree", "remove", "--force", "--force"]).arg(dir);
        if run(worktree).is_ok() {
            return Ok(());
        }
    }
    std::fs::remove_dir_all(dir).map_err(|e| WorkspaceError::Git(format!("cannot remove {}: {e}", dir.display())))?;
    if let Some(repository) = repository_of(dir) {
        prune(Path::new(&repository));
    }
    Ok(())
}

/// Forgets worktrees of `project` whose directories are gone (`git worktree prune`).
pub fn prune(project: &Path) {
    let mut prune = git(project);
    prune.args(["worktree", "prune"]);
    if let Err(e) = run(prune) {
        tracing::warn!(repository = %project.display(), error = %e, "git worktree prune failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sh(dir: &Path, script: &str) {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .expect("sh")
            .success();
        assert!(ok, "{script}");
    }

    pub(super) fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        sh(dir.path(), "git init -q -b main . && echo one > a.txt && git add a.txt && git commit -qm first");
        dir
    }

    fn planned(project: &Path, wt: &Path) -> Workspace {
        Workspace {
            kind: "worktree".into(),
            path: wt.join("w").display().to_string(),
            branch: branch_name("my agent!", Uuid::new_v4()),
            base_ref: "HEAD".into(),
            base_commit: None,
            repository: project.display().to_string(),
        }
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let plain = tempfile::tempdir().expect("tempdir");
        assert!(matches!(resolve(plain.path(), None), Err(WorkspaceError::NotARepository(_))));
        sh(plain.path(), "git init -q .");
        assert!(matches!(resolve(plain.path(), None), Err(WorkspaceError::NoCommits(_))));
        let repo = repo();
        assert!(matches!(resolve(repo.path(), Some("nope")), Err(WorkspaceError::UnknownBase(_))));
        assert!(matches!(resolve(repo.path(), Some("--output=/tmp/x")), Err(WorkspaceError::UnknownBase(_))));
        assert_eq!(resolve(repo.path(), Some("main")).ok().map(|c| c.len()), Some(40));
    }

    #[test]
    fn changes_list_commits_edits_untracked_and_binary_files_and_removal_is_clean() {
        let repo = repo();
        let wts = tempfile::tempdir().expect("tempdir");
        let ws = create(&planned(repo.path(), wts.path()), None).expect("create");
        assert!(ws.branch.starts_with("switchboard/my-agent/"), "{}", ws.branch);
        let wt = Path::new(&ws.path);
        assert!(unsaved(&ws).expect("unsaved").is_empty(), "a fresh worktree loses nothing");
        sh(wt, "echo two > b.txt && git add b.txt && git commit -qm second && echo more >> a.txt && echo new > c.txt && printf '\\0\\1\\2' > d.bin");
        let changes = changes(&ws).expect("changes");
        let by = |p: &str| changes.files.iter().find(|f| f.path == p).cloned().expect(p);
        assert_eq!(by("b.txt").status, "added");
        assert_eq!(by("a.txt").status, "modified");
        assert_eq!((by("a.txt").additions, by("a.txt").deletions), (Some(1), Some(0)));
        assert_eq!(by("c.txt").status, "added");
        assert!(by("d.bin").binary);
        assert!(changes.diff.contains("+more") && changes.diff.contains("Binary files"), "{}", changes.diff);
        assert_ne!(changes.head_commit, changes.base_commit);
        let lost = unsaved(&ws).expect("unsaved");
        assert!(lost.iter().any(|l| l.starts_with("commit ") && l.ends_with("second")), "{lost:?}");
        assert!(lost.iter().any(|l| l.starts_with("a.txt")), "{lost:?}");
        remove(&ws).expect("remove");
        assert!(!wt.exists());
        let mut list = git(repo.path());
        list.args(["worktree", "list"]);
        assert!(!run(list).expect("list").contains(&ws.path));
        let mut branches = git(repo.path());
        branches.args(["branch", "--list", "switchboard/*"]);
        assert_eq!(run(branches).expect("branches"), "");
    }

    #[test]
    fn a_spare_worktree_is_taken_and_switched_to_the_base() {
        let repo = repo();
        let wts = tempfile::tempdir().expect("tempdir");
        let spare = spare_path(wts.path(), Uuid::new_v4());
        make_spare(repo.path(), &spare).expect("spare");
        assert!(spare.join("a.txt").exists());
        // The repository moves on after the spare was made: the instance still starts at its base.
        sh(repo.path(), "git branch older && echo two > b.txt && git add b.txt && git commit -qm second");
        let mut plan = planned(repo.path(), wts.path());
        plan.repository = repo.path().canonicalize().expect("canonical").display().to_string();
        let ws = create(&plan, Some(&spare)).expect("create");
        assert!(!spare.exists(), "the spare was taken");
        assert!(Path::new(&ws.path).join("b.txt").exists(), "at HEAD, which moved after the spare was made");
        assert_eq!(branch_of(Path::new(&ws.path)).as_deref(), Some(ws.branch.as_str()));
        let mut older = plan.clone();
        older.path = wts.path().join("w2").display().to_string();
        older.branch = branch_name("x", Uuid::new_v4());
        older.base_ref = "older".into();
        make_spare(repo.path(), &spare).expect("spare again");
        let ws = create(&older, Some(&spare)).expect("create");
        assert!(!Path::new(&ws.path).join("b.txt").exists(), "switched back to the older base");
        assert!(unsaved(&ws).expect("unsaved").is_empty(), "nothing of its own yet");
    }
}
