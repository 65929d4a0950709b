//! The filesystem and network sandbox (Landlock), planned by the server and
//! applied by the containment helper before it starts the command.
//!
//! Landlock only allows: every access not granted is refused. The plan grants
//! - reading and executing everywhere except the server's data directory and the
//!   other terminals (`/dev/pts`): every entry along the way to them is granted on
//!   its own, so they are left out (entries made after the instance started in
//!   those directories are left out too);
//! - everything inside the workspace (its worktree and its repository's `.git`
//!   when it has one, else the project), a private temporary directory, the
//!   paths the agent declares writable, its own terminal and the harmless devices;
//! - with `network: false`, TCP connections to the server's port only, and no
//!   TCP bind.
//!
//! The sandbox also keeps signals and abstract Unix sockets inside it.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the helper applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    /// Trees left unreadable: everything else is readable (and executable). The
    /// helper lists the directories along the way itself, so the plan stays small
    /// however many entries they hold.
    pub hidden: Vec<PathBuf>,
    /// Trees (or files) writable.
    pub write: Vec<PathBuf>,
    /// Devices readable and writable (ioctl included).
    pub devices: Vec<PathBuf>,
    /// `Some(port)`: TCP limited to connecting to that port.
    pub connect_only: Option<u16>,
    /// Refuse to start when the kernel cannot sandbox.
    pub required: bool,
}

/// Devices any program may need.
const DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx"];

/// Everything readable except `hidden` (and what lies beneath them): `/` when
/// nothing is hidden, else each entry along the way to them, those excepted.
#[must_use]
pub fn readable_except(hidden: &[PathBuf]) -> Vec<PathBuf> {
    let mut grants = Vec::new();
    grant_except(Path::new("/"), hidden, &mut grants);
    grants
}

fn grant_except(tree: &Path, hidden: &[PathBuf], grants: &mut Vec<PathBuf>) {
    if hidden.iter().any(|h| h == tree) {
        return;
    }
    if !hidden.iter().any(|h| h.starts_with(tree)) {
        grants.push(tree.to_owned());
        return;
    }
    // Something beneath is hidden: grant the entries one by one.
    let Ok(entries) = std::fs::read_dir(tree) else { return };
    for entry in entries.flatten() {
        grant_except(&entry.path(), hidden, grants);
    }
}

/// A path made absolute and without `.`/`..` (not resolving symbolic links, which
/// Landlock resolves itself when the rule is added).
#[must_use]
pub fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Where a sandbox applies.
pub struct Where<'a> {
    pub data_dir: &'a Path,
    pub workspace: &'a Path,
    /// The repository of a worktree (its `.git` must be writable to commit).
    pub repository: Option<&'a Path>,
    pub tmpdir: &'a Path,
    /// The instance's terminal, `/dev/pts/N`.
    pub pts: Option<&'a Path>,
    /// The instance's `HOME`, for `~/…` paths.
    pub home: Option<&'a Path>,
    pub server_port: u16,
}

/// The first of `granted` that holds `data_dir` (granting it would open the data
/// directory too: Landlock adds rights, it cannot take any away beneath a grant).
#[must_use]
pub fn exposing<'a>(data_dir: &Path, granted: impl IntoIterator<Item = &'a Path>) -> Option<&'a Path> {
    granted.into_iter().find(|g| data_dir.starts_with(g))
}

/// The plan for an agent's sandbox settings.
///
/// # Errors
/// A path to be writable holds the data directory, which the sandbox must hide.
pub fn plan(settings: &crate::domain::settings::Sandbox, at: &Where<'_>) -> Result<Plan, String> {
    let data_dir = std::fs::canonicalize(at.data_dir).unwrap_or_else(|_| normal(at.data_dir));
    let mut write = vec![at.workspace.to_owned(), at.tmpdir.to_owned()];
    if let Some(repo) = at.repository {
        let git = repo.join(".git");
        if git.is_dir() {
            write.push(git);
        }
    }
    for path in &settings.writable {
        let full = match (path.strip_prefix("~/"), at.home) {
            (Some(rest), Some(home)) => home.join(rest),
            (Some(_), None) => continue,
            (None, _) => PathBuf::from(path),
        };
        write.push(full);
    }
    let resolved: Vec<PathBuf> = write.iter().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| normal(p))).collect();
    if let Some(path) = exposing(&data_dir, resolved.iter().map(PathBuf::as_path)) {
        return Err(format!(
            "the server's data directory {} lies inside {}, which the instance would write to; \
             the sandbox cannot hide it there (use a worktree workspace, or move the data directory)",
            data_dir.display(),
            path.display()
        ));
    }
    let mut devices: Vec<PathBuf> = DEVICES.iter().map(PathBuf::from).collect();
    devices.extend(at.pts.map(Path::to_owned));
    Ok(Plan {
        hidden: vec![data_dir, PathBuf::from("/dev/pts")],
        write,
        devices,
        connect_only: (!settings.network).then_some(at.server_port),
        required: settings.required,
    })
}

/// Applies `plan` to this process and everything it starts. `Ok(true)`: enforced
/// (fully or, on an older kernel, in part); `Ok(false)`: the kernel has no
/// Landlock. Paths that do not exist are passed over.
///
/// # Errors
/// The ruleset could not be built or applied.
pub fn apply(plan: &Plan) -> Result<bool, String> {
    use landlock::{
        Access, AccessFs, AccessNet, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope, ABI,
    };
    let fs = ABI::V5;
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(fs))
        .map_err(|e| e.to_string())?
        .scope(Scope::from_all(ABI::V6))
        .map_err(|e| e.to_string())?;
    if plan.connect_only.is_some() {
        ruleset = ruleset.handle_access(AccessNet::from_all(ABI::V4)).map_err(|e| e.to_string())?;
    }
    let mut created = ruleset.create().map_err(|e| e.to_string())?;
    let read = AccessFs::from_read(fs);
    let file_rw = AccessFs::from_file(fs);
    let readable = readable_except(&plan.hidden);
    let groups: [(&[PathBuf], landlock::BitFlags<AccessFs>); 3] =
        [(&readable, read), (&plan.write, AccessFs::from_all(fs)), (&plan.devices, file_rw)];
    for (paths, access) in groups {
        for path in paths {
            let Ok(fd) = PathFd::new(path) else { continue };
            // A file gets the rights that apply to files; a directory all of them.
            let access = if path.is_dir() { access } else { access & file_rw };
            created = created.add_rule(PathBeneath::new(fd, access)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    if let Some(port) = plan.connect_only {
        created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp)).map_err(|e| e.to_string())?;
    }
    let status = created.restrict_self().map_err(|e| e.to_string())?;
    Ok(status.ruleset != RulesetStatus::NotEnforced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_everything_but_the_hidden_trees() {
        let root = tempfile::tempdir().expect("tempdir");
        let base = root.path();
        for dir in ["a/data/x", "a/src", "b"] {
            std::fs::create_dir_all(base.join(dir)).expect("mkdir");
        }
        std::fs::write(base.join("a/file"), "x").expect("write");
        let mut grants = Vec::new();
        grant_except(base, &[base.join("a/data")], &mut grants);
        grants.sort();
        assert_eq!(grants, vec![base.join("a/file"), base.join("a/src"), base.join("b")]);
        let mut all = Vec::new();
        grant_except(base, &[PathBuf::from("/elsewhere")], &mut all);
        assert_eq!(all, vec![base.to_owned()]);
    }

    #[test]
    fn a_grant_holding_the_data_directory_is_found() {
        let data = Path::new("/srv/project/data");
        assert_eq!(
            exposing(data, [Path::new("/srv/other"), Path::new("/srv/project")]),
            Some(Path::new("/srv/project"))
        );
        assert_eq!(exposing(data, [Path::new("/srv/project/data/worktrees/x")]), None);
        assert_eq!(exposing(data, [Path::new("/srv/project/database")]), None);
    }

    #[test]
    fn paths_are_made_normal() {
        assert_eq!(normal(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
