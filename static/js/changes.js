// The Changes tab of an instance with a worktree: the files it changed with their
// +/- counts, and the diff with colours. The diff is drawn here, line by line as
// text (never as HTML), with four colours: a renderer library would add weight for
// features (side by side, word diffs) this view does not need.

import { h, said } from "./dom.js";
import { api } from "./api.js";

export class ChangesPanel {
  constructor(id) {
    this.id = id;
    this.summary = h("p", { class: "meta" });
    this.files = h("table", { class: "changed-files" });
    this.diff = h("pre", { class: "diff", "aria-label": "Diff" });
    this.root = h("div", { class: "changes card", hidden: true, dataset: { changes: id } },
      h("div", { class: "actions" }, h("h2", {}, "Changes"), h("span", { class: "spacer" }),
        h("button", { type: "button", class: "ghost", onclick: () => this.load() }, "Refresh")),
      this.summary, this.files, this.diff);
  }

  async load() {
    this.summary.textContent = "Reading the worktree…";
    let changes;
    try {
      changes = await api("GET", `/api/instances/${this.id}/changes`);
    } catch (e) {
      this.summary.textContent = e.message;
      this.files.replaceChildren();
      this.diff.replaceChildren();
      return;
    }
    const head = changes.head_commit === changes.base_commit ? "no commits yet" : `now at ${changes.head_commit.slice(0, 8)}`;
    this.summary.replaceChildren("Branch ", said(changes.branch), ` · from ${changes.base_commit.slice(0, 8)} · ${head} · `,
      `${changes.files.length} file${changes.files.length === 1 ? "" : "s"} changed`,
      changes.truncated ? " · the diff is cut at 2 MiB (the whole patch: ?format=patch)" : "");
    this.files.replaceChildren(...changes.files.map((f) => h("tr", { dataset: { file: f.path } },
      h("td", { class: `status ${f.status}` }, f.status),
      h("td", {}, said(f.path)),
      f.binary ? h("td", { class: "meta", colspan: "2" }, "binary")
        : [h("td", { class: "add" }, `+${f.additions}`), h("td", { class: "del" }, `−${f.deletions}`)])));
    this.diff.replaceChildren(...render(changes.diff));
  }
}

/** One element per diff line, its class from its first character. */
export function render(diff) {
  const lines = diff.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line) => {
    let kind = "ctx";
    if (line.startsWith("diff --git") || line.startsWith("index ") || line.startsWith("+++") || line.startsWith("---")
      || line.startsWith("new file") || line.startsWith("deleted file") || line.startsWith("Binary files")) kind = "file";
    else if (line.startsWith("@@")) kind = "hunk";
    else if (line.startsWith("+")) kind = "add";
    else if (line.startsWith("-")) kind = "del";
    return h("span", { class: `line ${kind}` }, `${line}\n`);
  });
}

/** Asks before deleting work: the 409's list of what would be lost, then `discard=true`. */
export async function deleteWithWork(path, what) {
  try {
    await api("DELETE", path);
    return true;
  } catch (e) {
    if (e.code !== "workspace_dirty") throw e;
    const items = (e.lost || []).flatMap((l) => l.items.map((i) => `${l.branch}: ${i}`));
    const shown = items.slice(0, 15).join("\n") + (items.length > 15 ? `\n… and ${items.length - 15} more` : "");
    if (!confirm(`Deleting ${what} would lose this work:\n\n${shown}\n\nDelete it anyway?`)) return false;
    await api("DELETE", `${path}?discard=true`);
    return true;
  }
}
