-- agents.db, schema version 9: workspaces. An agent's instances run in its
-- project_path ("shared") or each in a git worktree of its own ("worktree");
-- an instance records its worktree (JSON: kind, path, branch, base_ref,
-- base_commit, repository), planned when it is created, made when it starts.
ALTER TABLE agent_settings ADD COLUMN workspace TEXT NOT NULL DEFAULT 'shared';
ALTER TABLE agent_instances ADD COLUMN workspace TEXT;
