// Agents: the list, and the form that creates or edits one.

import { h, said, showFieldError, lines } from "../dom.js";
import { deleteWithWork } from "../changes.js";
import { api } from "../api.js";
import { state } from "../state.js";

const optionalNumber = (input) => (input.value === "" ? null : Number(input.value));

export function agentsPage(editId) {
  const list = h("div");
  const agent = editId && editId !== "new" ? state.agents.get(editId) : null;
  const s = agent ? agent.settings : {};
  const field = (label, name, input, hint) => h("div", {}, h("label", { for: `f-${name}` }, label),
    Object.assign(input, { id: `f-${name}` }), hint ? h("div", { class: "hint" }, hint) : null);
  const name = h("input", { dataset: { field: "name" }, value: agent?.name ?? "", required: true, autocomplete: "off" });
  const path = h("input", { dataset: { field: "project_path" }, value: agent?.project_path ?? "", required: true, placeholder: "/home/me/project" });
  const description = h("input", { dataset: { field: "description" }, value: agent?.description ?? "" });
  const command = h("textarea", { dataset: { field: "command" } });
  command.value = (agent?.command ?? ["bash"]).join("\n");
  // Name and value fields, not KEY=value lines: a value may hold newlines or "=".
  const envRows = h("div", { class: "env-rows", dataset: { field: "env" } });
  const addEnvRow = (name = "", value = "") => {
    const key = h("input", { class: "env-key", value: name, placeholder: "NAME", "aria-label": "Variable name", autocomplete: "off" });
    const val = h("textarea", { class: "env-value", rows: 1, placeholder: "value", "aria-label": "Value" });
    val.value = value;
    const row = h("div", { class: "env-row" }, key, val,
      h("button", { type: "button", class: "ghost", "aria-label": "Remove variable", onclick: () => row.remove() }, "×"));
    envRows.append(row);
    return row;
  };
  for (const [k, v] of Object.entries(agent?.env ?? {})) addEnvRow(k, v);
  const env = h("div", {}, envRows,
    h("button", { type: "button", class: "ghost", id: "add-env", onclick: () => addEnvRow().querySelector("input").focus() }, "Add variable"));
  const autoStart = h("input", { type: "checkbox", dataset: { field: "settings.auto_start" }, checked: s.auto_start });
  const max = h("input", { type: "number", min: 1, max: 1000, dataset: { field: "settings.max_concurrent_instances" }, value: s.max_concurrent_instances ?? 1 });
  const idle = h("input", { type: "number", dataset: { field: "settings.idle_ms" }, value: s.idle_ms ?? "", placeholder: "400" });
  const patterns = h("textarea", { dataset: { field: "settings.prompt_patterns" } });
  patterns.value = (s.prompt_patterns ?? []).join("\n");
  const workspace = h("select", { dataset: { field: "settings.workspace" } },
    h("option", { value: "shared" }, "Shared: every instance in the project directory"),
    h("option", { value: "worktree" }, "Worktree: each instance in a git worktree of its own"));
  workspace.value = s.workspace ?? "shared";
  const lim = s.limits ?? {};
  const number = (name, value, placeholder) => h("input", { type: "number", min: 1, dataset: { field: `settings.limits.${name}` },
    value: value ?? "", placeholder, "aria-label": placeholder });
  const memory = number("memory_mb", lim.memory_mb, "memory MiB");
  const cpu = number("cpu_percent", lim.cpu_percent, "CPU %");
  const pids = number("pids", lim.pids, "processes");
  const limits = h("div", { class: "limit-row" }, memory, cpu, pids);
  const box = s.sandbox ?? { enabled: false, writable: [], network: true, required: false };
  const sandboxed = h("input", { type: "checkbox", dataset: { field: "settings.sandbox.enabled" }, checked: box.enabled });
  const network = h("input", { type: "checkbox", dataset: { field: "settings.sandbox.network" }, checked: box.network });
  const writable = h("textarea", { dataset: { field: "settings.sandbox.writable" }, placeholder: "~/.claude" });
  writable.value = (box.writable ?? []).join("\n");
  const integration = h("select", { dataset: { field: "settings.integration" } },
    ["none", "claude-code", "codex", "gemini", "aider"].map((v) => h("option", { value: v }, v)));
  integration.value = s.integration ?? "none";
  // A new agent starts from a preset: its command and integration.
  const preset = h("select", { dataset: { field: "preset" }, "aria-label": "Preset" },
    h("option", { value: "" }, "Custom command"));
  const presetHint = h("div", { class: "hint" }, "A built-in agent: its command and how Switchboard hears from it");
  if (!agent) {
    api("GET", "/api/presets").then((presets) => {
      for (const p of presets) {
        preset.append(h("option", { value: p.name, disabled: !p.available, title: p.unavailable_reason || p.description },
          p.available ? `${p.name} — ${p.description}` : `${p.name} (unavailable: ${p.unavailable_reason})`));
      }
      preset.onchange = () => {
        const chosen = presets.find((p) => p.name === preset.value);
        if (!chosen) return;
        command.value = chosen.command.join("\n");
        integration.value = chosen.integration;
        if (!name.value) name.value = chosen.name;
        presetHint.textContent = chosen.description;
      };
    }).catch(() => {});
  }
  const secret = h("input", { type: "password", autocomplete: "new-password", dataset: { field: "settings.trigger_secret" },
    placeholder: s.has_trigger_secret ? "set (leave empty to keep)" : "none" });
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, agent ? `Edit ${agent.name}` : "New agent"),
    agent ? null : h("div", {}, h("label", { for: "f-preset" }, "Start from"), Object.assign(preset, { id: "f-preset" }), presetHint),
    field("Name", "name", name, "Letters, digits, - _ . (unique)"),
    field("Project directory", "project_path", path, "An existing directory on the server"),
    field("Command", "command", command, "One argument per line; run directly, never through a shell"),
    field("Description", "description", description),
    field("Integration", "integration", integration, "claude-code: exact questions, approvals and resume through its hooks; codex, aider: their notify commands"),
    field("Environment", "env", env, "One variable a row; values are used exactly as written"),
    h("label", { class: "inline" }, autoStart, "Start one instance whenever the server starts"),
    field("Instances at once", "max", max),
    field("Workspace", "workspace", workspace, "Worktree needs a git repository; each instance gets a branch"),
    field("Limits", "limits", limits, "On all of an instance's processes together; empty for the server's default (none unless configured)"),
    h("label", { class: "inline" }, sandboxed, "Sandbox: write only in its workspace and the paths below; never read the server's data"),
    h("label", { class: "inline" }, network, "Network (without it: connections to this server only)"),
    field("Writable paths (sandbox)", "writable", writable, "One per line, absolute or ~/…; e.g. the agent's own state directory"),
    field("Quiet time before it counts as waiting (ms)", "idle", idle, "Empty for the default (400)"),
    field("Prompt patterns", "patterns", patterns, "Regular expressions for the last screen line, one per line"),
    field("Trigger secret", "secret", secret, "For POST /api/hooks/agents/NAME; 16+ characters"),
    h("p", { class: "form-error error", role: "alert" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, agent ? "Save" : "Create agent"),
      agent ? h("button", { type: "button", class: "danger", onclick: () => deleteAgent(agent) }, "Delete agent") : null,
      agent ? h("a", { class: "button ghost", href: "#/agents" }, "Cancel") : null));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const envMap = {};
    for (const row of envRows.querySelectorAll(".env-row")) {
      const key = row.querySelector(".env-key").value.trim();
      const value = row.querySelector(".env-value").value;
      if (!key && !value) continue;
      if (!key) { showFieldError(form, { field: "env", message: "env: a value needs a name" }); return; }
      if (Object.hasOwn(envMap, key)) { showFieldError(form, { field: "env", message: `env: ${key} is given twice` }); return; }
      envMap[key] = value;
    }
    const settings = {
      auto_start: autoStart.checked, max_concurrent_instances: Number(max.value || 1),
      idle_ms: idle.value === "" ? null : Number(idle.value), prompt_patterns: lines(patterns.value),
      workspace: workspace.value, integration: integration.value,
      limits: { ...lim, memory_mb: optionalNumber(memory), cpu_percent: optionalNumber(cpu), pids: optionalNumber(pids) },
      sandbox: { ...box, enabled: sandboxed.checked, network: network.checked, writable: lines(writable.value) },
    };
    if (secret.value) settings.trigger_secret = secret.value;
    const body = { name: name.value.trim(), project_path: path.value.trim(), description: description.value,
      command: command.value.split("\n").filter((l) => l.length), env: envMap, settings };
    try {
      const saved = agent ? await api("PUT", `/api/agents/${agent.id}`, body) : await api("POST", "/api/agents", body);
      state.agents.set(saved.id, saved);
      showFieldError(form, null);
      location.hash = "#/";
    } catch (err) {
      showFieldError(form, err);
    }
  });
  const update = () => {
    const agents = [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    list.replaceChildren(h("div", { class: "actions" }, h("h1", {}, "Agents"), h("span", { class: "spacer" }),
      h("a", { class: "button ghost", href: "#/agents/new" }, "New agent")),
    agents.length ? h("table", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Command"), h("th", { class: "hide-narrow" }, "Project"), h("th", {})),
      agents.map((a) => h("tr", { dataset: { agent: a.id } }, h("td", {}, said(a.name)), h("td", {}, said(a.command.join(" "))),
        h("td", { class: "hide-narrow meta" }, said(a.project_path)),
        h("td", {}, h("a", { href: `#/agents/${a.id}` }, "Edit")))))
      : h("p", { class: "hint" }, "No agents yet."));
  };
  return { root: h("div", { class: "split" }, list, form), update };
}

async function deleteAgent(agent) {
  if (!confirm(`Delete ${agent.name}? Its running instances are terminated; its instances and messages go with it.`)) return;
  try {
    if (!await deleteWithWork(`/api/agents/${agent.id}`, `${agent.name}'s instances`)) return;
    location.hash = "#/agents";
  } catch (e) { alert(e.message); }
}
