// The overview: what waits for you first (answered in place), then every agent with
// its instances as cards, or every instance as one compact list with filters, search
// and sorting. Keys: j/k (or arrows) step through the waiting list, Enter focuses the
// reply, / focuses search, ? shows the keys.

import { h, short, said, clampText } from "../dom.js";
import { FINAL, badge, state, agentName, usageSlot } from "../state.js";
import { startInstance, terminate, removeInstance } from "../instance.js";
import { waitingSection, muted } from "../waiting.js";
import { refresh } from "../router.js";

const view = {
  mode: localStorage.getItem("switchboard.view") || "cards",
  agent: "", status: "", text: "", sort: "status",
};
const RANK = { awaiting_input: 0, active: 1, idle: 2, error: 3, completed: 4, terminated: 5 };

export function overviewPage() {
  const root = h("div");
  const update = () => {
    const agents = [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (agents.length === 0) {
      root.replaceChildren(h("div", { class: "card empty" },
        h("h1", {}, "No agents yet"),
        h("p", {}, "An agent is a command — Claude Code, Codex, Aider, a shell, any interactive program — run in a project directory. ",
          "Each start makes an instance with its own terminal that you can watch and answer here."),
        h("a", { class: "button", href: "#/agents/new" }, "Create your first agent"),
        h("p", { class: "hint" }, "Or over HTTP: POST /api/agents {\"name\", \"project_path\", \"command\": [\"bash\"]}")));
      return;
    }
    const focus = focused(root);
    const parts = [waitingSection(), toolbar(agents)];
    parts.push(view.mode === "list" ? listView() : h("div", { class: "agents" }, agents.map(cachedCard)));
    root.replaceChildren(...parts.filter(Boolean));
    refocus(root, focus);
  };
  const onKey = (e) => keys(e);
  document.addEventListener("keydown", onKey);
  return { root, update, keepsFocus: true, unmount: () => document.removeEventListener("keydown", onKey) };
}

// What has the keyboard, so that a redraw gives it back (with the caret where it was).
function focused(root) {
  const el = document.activeElement;
  if (!el || !root.contains(el)) return null;
  const selector = el.id ? `#${el.id}` : el.dataset.reply ? `input[data-reply="${el.dataset.reply}"]`
    : el.dataset.filter ? `[data-filter="${el.dataset.filter}"]` : null;
  const caret = "selectionStart" in el && el.type !== "select-one" ? [el.selectionStart, el.selectionEnd] : null;
  return selector ? { selector, caret } : null;
}

function refocus(root, focus) {
  if (!focus) return;
  const el = root.querySelector(focus.selector);
  if (!el) return;
  el.focus();
  if (focus.caret && el.setSelectionRange) { try { el.setSelectionRange(...focus.caret); } catch { /* not a text field */ } }
}

function toolbar(agents) {
  const search = h("input", { type: "search", id: "search", placeholder: "Search agents, questions, tasks  ( / )",
    value: view.text, "aria-label": "Search", autocomplete: "off" });
  search.addEventListener("input", () => { view.text = search.value; if (view.mode !== "list") setMode("list"); else redrawList(); });
  const select = (name, options, label) => {
    const el = h("select", { "aria-label": label, dataset: { filter: name } },
      options.map(([value, text]) => h("option", { value }, text)));
    el.value = view[name];
    el.addEventListener("change", () => { view[name] = el.value; if (view.mode !== "list") setMode("list"); else redrawList(); });
    return el;
  };
  const statuses = ["awaiting_input", "active", "idle", "completed", "error", "terminated"];
  return h("div", { class: "toolbar" },
    h("div", { class: "switch", role: "tablist" },
      ["cards", "list"].map((m) => h("button", { type: "button", class: "ghost", role: "tab", "aria-selected": String(view.mode === m),
        dataset: { view: m }, onclick: () => setMode(m) }, m === "cards" ? "Cards" : "List"))),
    search,
    select("agent", [["", "All agents"], ...agents.map((a) => [a.id, a.name])], "Agent"),
    select("status", [["", "Any status"], ...statuses.map((s) => [s, s.replace("_", " ")])], "Status"),
    select("sort", [["status", "By status"], ["age", "By age"]], "Sort"),
    h("button", { type: "button", class: "ghost", "aria-label": "Keyboard shortcuts", onclick: showKeys }, "?"));
}

function setMode(mode) {
  view.mode = mode;
  localStorage.setItem("switchboard.view", mode);
  refresh();
  if (mode === "list") requestAnimationFrame(() => { const s = document.getElementById("search"); if (s && view.text) { s.focus(); s.setSelectionRange(s.value.length, s.value.length); } });
}

/** Instances matching the filters and search, sorted. */
export function filtered() {
  const text = view.text.trim().toLowerCase();
  const matches = (i) => {
    if (view.agent && i.agent_id !== view.agent) return false;
    if (view.status && i.status !== view.status) return false;
    if (!text) return true;
    const task = i.task_id != null ? state.tasks.get(i.task_id)?.title : "";
    return [agentName(i.agent_id), i.prompt, task, i.id, i.status_reason].some((f) => String(f || "").toLowerCase().includes(text));
  };
  const list = [...state.instances.values()].filter(matches);
  const started = (i) => String(i.started_at || i.last_activity_at || "");
  list.sort(view.sort === "age" ? (a, b) => started(a).localeCompare(started(b))
    : (a, b) => (RANK[a.status] - RANK[b.status]) || started(b).localeCompare(started(a)));
  return list;
}

function age(instance) {
  const at = Date.parse(instance.started_at || instance.last_activity_at || "");
  if (!at) return "—";
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
}

let listBody = null;
function redrawList() {
  if (!listBody) { refresh(); return; }
  listBody.replaceChildren(...rows());
}

function rows() {
  const list = filtered();
  if (!list.length) return [h("tr", {}, h("td", { colspan: 7, class: "hint" }, "No instance matches."))];
  return list.slice(0, 1000).map((i) => h("tr", { dataset: { instance: i.id }, class: muted(i) ? "muted" : null },
    h("td", {}, said(agentName(i.agent_id))),
    h("td", { class: "id" }, h("a", { href: `#/i/${i.id}` }, short(i.id))),
    h("td", {}, badge(i), i.status_reason && i.status !== "awaiting_input"
      ? h("span", { class: "meta" }, " ", said(clampText(i.status_reason, 1, 40).text)) : null),
    h("td", { class: "meta" }, age(i)),
    h("td", { class: "grow one-line meta" }, i.status === "awaiting_input" ? said(clampText(i.prompt || "(waiting for input)", 1, 120).text) : ""),
    h("td", { class: "hide-narrow" }, FINAL.has(i.status) ? "" : usageSlot(i)),
    h("td", {}, FINAL.has(i.status) ? h("button", { class: "danger", onclick: () => removeInstance(i.id) }, "Delete")
      : h("button", { class: "danger", onclick: () => terminate(i.id) }, "Terminate"))));
}

function listView() {
  listBody = h("tbody", {}, rows());
  return h("div", { class: "card list-view" },
    h("table", { class: "instance-list" },
      h("thead", {}, h("tr", {}, ["Agent", "Id", "Status", "Age", "Asks", "Memory · CPU", ""].map((t) => h("th", {}, t)))),
      listBody));
}

// Cards are rebuilt only when what they show changed: with hundreds of instances and
// an event every few milliseconds, a redraw touches one card, not all of them.
const cards = new Map();
function cachedCard(agent) {
  const mine = [...state.instances.values()].filter((i) => i.agent_id === agent.id);
  const key = JSON.stringify([agent.name, agent.command, agent.project_path,
    mine.map((i) => [i.id, i.status, i.prompt, i.status_reason, i.exit_code, i.queue_position])]);
  const cached = cards.get(agent.id);
  if (cached && cached.key === key) return cached.el;
  const el = agentCard(agent, mine);
  cards.set(agent.id, { key, el });
  if (cards.size > state.agents.size * 2) for (const id of cards.keys()) if (!state.agents.has(id)) cards.delete(id);
  return el;
}

function agentCard(agent, mine) {
  const live = mine.filter((i) => !FINAL.has(i.status));
  const ended = mine.filter((i) => FINAL.has(i.status)).slice(0, 3);
  const rank = { awaiting_input: 0, active: 1, idle: 2 };
  live.sort((a, b) => rank[a.status] - rank[b.status]);
  return h("article", { class: "card agent", dataset: { agent: agent.id } },
    h("div", { class: "agent-head" }, h("h3", {}, said(agent.name)), h("span", { class: "spacer" }),
      h("div", { class: "actions" },
        h("button", { onclick: () => startInstance(agent.id), "aria-label": `Start ${agent.name}` }, "Start"),
        h("a", { class: "button ghost", href: `#/agents/${agent.id}` }, "Edit"))),
    h("div", { class: "meta" }, said(agent.command.join(" ")), " · ", said(agent.project_path)),
    h("ul", { class: "instances" }, [...live, ...ended].map((i) => h("li", { dataset: { instance: i.id } },
      badge(i), h("span", { class: "id" }, short(i.id)),
      h("span", { class: "grow one-line" }, said(clampText(i.status === "awaiting_input" ? (i.prompt || "") : (i.status_reason || ""), 1, 120).text)),
      FINAL.has(i.status) ? null : usageSlot(i),
      h("span", { class: "actions" },
        h("a", { class: "button ghost", href: `#/i/${i.id}` }, "Open"),
        FINAL.has(i.status) ? h("button", { class: "danger", onclick: () => removeInstance(i.id) }, "Delete")
          : h("button", { class: "danger", onclick: () => terminate(i.id) }, "Terminate"))))),
    mine.length === 0 ? h("p", { class: "hint" }, "No instances yet: Start runs one.") : null);
}

// ---------------------------------------------------------------- keys

function entries() {
  return [...document.querySelectorAll("#waiting .waiting-item:not(.group-members .waiting-item), #waiting .waiting-group")];
}

function keys(e) {
  const typing = /INPUT|TEXTAREA|SELECT/.test(document.activeElement?.tagName || "");
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (typing) {
    if (e.key === "Escape") document.activeElement.blur();
    return;
  }
  const list = entries();
  const at = list.findIndex((el) => el.classList.contains("focused"));
  const move = (to) => {
    list.forEach((el) => el.classList.remove("focused"));
    const el = list[Math.max(0, Math.min(list.length - 1, to))];
    if (el) { el.classList.add("focused"); el.scrollIntoView({ block: "nearest" }); }
  };
  if ((e.key === "j" || e.key === "ArrowDown") && list.length) { e.preventDefault(); move(at + 1); }
  else if ((e.key === "k" || e.key === "ArrowUp") && list.length) { e.preventDefault(); move(at < 0 ? 0 : at - 1); }
  else if (e.key === "Enter" && at >= 0) { e.preventDefault(); list[at].querySelector("input.reply")?.focus(); }
  else if (e.key === "/") { e.preventDefault(); document.getElementById("search")?.focus(); }
  else if (e.key === "?") { e.preventDefault(); showKeys(); }
}

function showKeys() {
  const existing = document.getElementById("keys-help");
  if (existing) { existing.remove(); return; }
  const close = () => box.remove();
  const box = h("div", { id: "keys-help", class: "card keys-help", role: "dialog", "aria-label": "Keyboard shortcuts" },
    h("h2", {}, "Keys"),
    h("dl", {},
      [["j / ↓", "next waiting entry"], ["k / ↑", "previous waiting entry"], ["Enter", "type the reply to the chosen entry"],
        ["Escape", "leave the reply field"], ["/", "search"], ["?", "this list"], ["Alt+1…9", "open instance tabs"]]
        .map(([k, what]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, what)])),
    h("button", { type: "button", onclick: close }, "Close"));
  document.body.append(box);
  box.querySelector("button").focus();
}
