// Switchboard dashboard: one EventSource on /api/events keeps every list live;
// each open instance has a tab with its terminal (xterm.js fed by the instance's
// own stream) and its messages. Plain ES modules, no build step.

import { Terminal } from "/static/vendor/xterm/xterm.mjs";
import { FitAddon } from "/static/vendor/xterm/addon-fit.mjs";

const EVENT_TYPES = ["task.created", "task.updated", "task.deleted", "agent.created", "agent.updated",
  "agent.deleted", "instance.created", "instance.status", "message.created"];
const FINAL = new Set(["completed", "error", "terminated"]);
const MAX_TABS = 12;

// ---------------------------------------------------------------- helpers

/** Builds an element: h("div", {class: "x", onclick: f}, "text", child). Text is never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const short = (id) => String(id).slice(0, 8);

// ---------------------------------------------------------------- text from agents and users

// Text that agents (or anyone with an instance token) and users supply is never
// allowed to pass for the page's own words, to hide characters, or to take the
// screen: it is shown with its control and direction characters made visible,
// isolated from the text around it (<bdi>, dir=auto), clamped in lines and
// characters (with "Show all"), and attributed to whoever wrote it.
const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

/** `text` with control characters as their visible pictures and direction marks as ⟨U+XXXX⟩. */
function visible(text) {
  return String(text ?? "")
    .replace(CONTROL, (c) => (c === "\u007f" ? "\u2421" : c < " " ? String.fromCharCode(0x2400 + c.charCodeAt(0)) : `⟨U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`))
    .replace(BIDI, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase()}⟩`);
}

/** Supplied text inline: isolated and visible. */
const said = (text) => h("bdi", {}, visible(text));

/** `text` cut to `lines` lines and `chars` characters; whether it was cut. */
function clampText(text, lines, chars) {
  const all = String(text ?? "");
  let cut = all.split("\n").slice(0, lines).join("\n");
  if (cut.length > chars) cut = cut.slice(0, chars);
  return { text: cut, clamped: cut.length < all.length };
}

/** Supplied text as a block: quoted, isolated, clamped, with "Show all" when cut. */
function quote(text, { lines = 6, chars = 600, cls = "" } = {}) {
  const all = String(text ?? "");
  const { text: cut, clamped } = clampText(all, lines, chars);
  const body = h("span", {}, visible(cut));
  const box = h("blockquote", { class: `supplied ${cls}`.trim(), dir: "auto" }, body);
  if (clamped) {
    const total = all.split("\n").length;
    const more = h("button", { type: "button", class: "ghost show-all" }, `Show all (${total} lines, ${all.length} characters)`);
    more.addEventListener("click", (e) => {
      e.stopPropagation();
      const open = box.classList.toggle("expanded");
      body.textContent = visible(open ? all : cut);
      more.textContent = open ? "Show less" : `Show all (${total} lines, ${all.length} characters)`;
    });
    box.append(h("span", { class: "clamped" }, "…"), more);
  }
  return box;
}

/** Who wrote what follows: the agent's name and the instance, never the page's voice. */
const attribution = (instance, verb) => h("div", { class: "said-by" },
  said(agentName(instance.agent_id)), ` · ${short(instance.id)} ${verb}:`);

/** Paste markers in pasted text would end a bracketed paste early. */
function withoutPasteMarkers(text) {
  let out = String(text);
  while (out.includes("\u001b[200~") || out.includes("\u001b[201~")) {
    out = out.split("\u001b[200~").join("").split("\u001b[201~").join("");
  }
  return out;
}
const when = (at) => (at ? new Date(at).toLocaleString() : "");

class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.status === 401 && !path.startsWith("/api/session")) showSignIn();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function badge(instance) {
  let label = instance.status.replace("_", " ");
  if (instance.status === "idle") label = instance.queue_position ? `queued #${instance.queue_position}` : "queued";
  if (FINAL.has(instance.status) && instance.exit_code !== null && instance.exit_code !== undefined) {
    label += ` (${instance.exit_code})`;
  }
  return h("span", { class: `badge ${instance.status}`, dataset: { status: instance.status } }, label);
}

// ---------------------------------------------------------------- state

const state = {
  agents: new Map(),
  instances: new Map(),
  tasks: new Map(),
  lastEventId: null,
  buffered: null, // events that arrive while a snapshot loads
  started: false,
};

const agentName = (id) => state.agents.get(id)?.name ?? short(id);
const waiting = () => [...state.instances.values()].filter((i) => i.status === "awaiting_input")
  .sort((a, b) => String(a.last_activity_at).localeCompare(String(b.last_activity_at)));

async function loadSnapshot() {
  state.buffered = [];
  try {
    const [agents, instances, tasks] = await Promise.all([
      api("GET", "/api/agents?limit=1000"), api("GET", "/api/instances?limit=1000"), api("GET", "/api/tasks?limit=1000"),
    ]);
    state.agents = new Map(agents.map((a) => [a.id, a]));
    state.instances = new Map(instances.map((i) => [i.id, i]));
    state.tasks = new Map(tasks.map((t) => [t.id, t]));
  } finally {
    const buffered = state.buffered || [];
    state.buffered = null;
    for (const [type, data] of buffered) apply(type, data, false);
  }
  refresh();
}

let positionsTimer = null;
function refreshQueuePositions() {
  clearTimeout(positionsTimer);
  positionsTimer = setTimeout(async () => {
    const queued = await api("GET", "/api/instances?status=idle&limit=1000").catch(() => []);
    for (const instance of queued) state.instances.set(instance.id, instance);
    refresh();
  }, 150);
}

function apply(type, data, live) {
  switch (type) {
    case "task.created": case "task.updated": state.tasks.set(data.task.id, data.task); break;
    case "task.deleted": state.tasks.delete(data.id); break;
    case "agent.created": case "agent.updated": state.agents.set(data.agent.id, data.agent); break;
    case "agent.deleted":
      state.agents.delete(data.id);
      for (const [id, instance] of state.instances) if (instance.agent_id === data.id) state.instances.delete(id);
      break;
    case "instance.created": state.instances.set(data.instance.id, data.instance); break;
    case "instance.status": {
      const instance = state.instances.get(data.instance_id);
      if (!instance) {
        api("GET", `/api/instances/${data.instance_id}`).then((i) => { state.instances.set(i.id, i); refresh(); }).catch(() => {});
        break;
      }
      instance.status = data.status;
      instance.status_reason = data.reason;
      instance.prompt = data.status === "awaiting_input" ? data.prompt : null;
      if (data.exit_code !== null && data.exit_code !== undefined) instance.exit_code = data.exit_code;
      instance.last_activity_at = data.at;
      if (data.status !== "idle") instance.queue_position = null;
      if (data.previous === "idle") refreshQueuePositions();
      if (live && data.status === "awaiting_input") notifyWaiting(instance);
      tabs.views.get(instance.id)?.statusChanged();
      break;
    }
    case "message.created": tabs.views.get(data.message.agent_instance_id)?.addMessage(data.message); break;
    default: break;
  }
}

// ---------------------------------------------------------------- live events

const conn = document.getElementById("conn");
let source = null;

function setConnection(up) {
  conn.textContent = up ? "● live" : "Reconnecting…";
  conn.classList.toggle("down", !up);
  conn.title = up ? "Receiving changes as they happen" : "The connection to the server was lost; retrying";
}

function connect() {
  const resume = state.lastEventId ? `?last_event_id=${encodeURIComponent(state.lastEventId)}` : "";
  source = new EventSource(`/api/events${resume}`);
  source.onopen = () => {
    setConnection(true);
    loadSnapshot().catch(() => {});
  };
  source.onerror = () => {
    setConnection(false);
    if (source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(connect, 2000); // the browser gave up (e.g. an error answer): start over, resuming
    }
  };
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (e) => {
      state.lastEventId = e.lastEventId || state.lastEventId;
      const data = JSON.parse(e.data);
      if (state.buffered) state.buffered.push([type, data]);
      else { apply(type, data, true); refresh(); }
    });
  }
  source.addEventListener("reset", (e) => {
    state.lastEventId = e.lastEventId || null;
    loadSnapshot().catch(() => {});
  });
}

// ---------------------------------------------------------------- notifications

const notifyButton = document.getElementById("notify");
function updateNotifyButton() {
  notifyButton.hidden = !("Notification" in window) || Notification.permission !== "default";
}
notifyButton.addEventListener("click", async () => {
  await Notification.requestPermission();
  updateNotifyButton();
});

function notifyWaiting(instance) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const agent = state.agents.get(instance.agent_id);
  if (agent && agent.settings && agent.settings.notification_enabled === false) return;
  const asked = instance.prompt ? clampText(instance.prompt, 3, 200) : null;
  const body = asked ? `${agentName(instance.agent_id)} asks: “${visible(asked.text)}${asked.clamped ? "…" : ""}”`
    : "It is waiting for input.";
  const note = new Notification(`${agentName(instance.agent_id)} needs you`, { body, tag: instance.id });
  note.onclick = () => { window.focus(); location.hash = `#/i/${instance.id}`; };
}

// ---------------------------------------------------------------- instance tabs

const tabs = { open: JSON.parse(localStorage.getItem("switchboard.tabs") || "[]"), views: new Map() };
const tabStrip = document.getElementById("tabs");
const views = h("div", { id: "views" });

// A browser opens at most six HTTP/1.1 connections to one server, and each open event
// stream holds one until it closes: with a stream per tab, a few tabs (or a second
// window) would leave no connection for typing. So only the instance on screen
// streams, and a page in the background streams none (its /api/events stays, for
// notifications). Coming back costs a fresh snapshot, a few milliseconds.
let streaming = null;

function stream(view) {
  if (streaming && streaming !== view) streaming.disconnect();
  streaming = view;
  if (!document.hidden) view?.connect();
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) streaming?.disconnect();
  else streaming?.connect();
});

function saveTabs() { localStorage.setItem("switchboard.tabs", JSON.stringify(tabs.open)); }

function openTab(id) {
  if (!tabs.open.includes(id)) {
    tabs.open.push(id);
    while (tabs.open.length > MAX_TABS) closeTab(tabs.open[0], false);
    saveTabs();
  }
  if (!tabs.views.has(id)) {
    const view = new InstanceView(id);
    tabs.views.set(id, view);
    views.append(view.root);
  }
  return tabs.views.get(id);
}

function closeTab(id, navigate = true) {
  tabs.open = tabs.open.filter((t) => t !== id);
  saveTabs();
  const view = tabs.views.get(id);
  if (view) { view.dispose(); tabs.views.delete(id); }
  if (navigate && currentTab() === id) location.hash = tabs.open.length ? `#/i/${tabs.open.at(-1)}` : "#/";
  renderTabs();
}

function currentTab() {
  const match = location.hash.match(/^#\/i\/([0-9a-f-]{36})$/);
  return match ? match[1] : null;
}

function renderTabs() {
  const current = currentTab();
  tabStrip.hidden = tabs.open.length === 0;
  tabStrip.replaceChildren(...tabs.open.map((id, n) => {
    const instance = state.instances.get(id);
    return h("div", {
      class: `tab${id === current ? " current" : ""}`, role: "tab", "aria-selected": id === current ? "true" : "false",
      title: `Alt+${n + 1}`, dataset: { instance: id }, onclick: () => { location.hash = `#/i/${id}`; },
    },
    instance ? badge(instance) : null,
    " ", instance ? said(agentName(instance.agent_id)) : "instance", ` · ${short(id)}`,
    h("button", { class: "close", title: "Close tab", "aria-label": "Close tab",
      onclick: (e) => { e.stopPropagation(); closeTab(id); } }, "×"));
  }));
}

class InstanceView {
  constructor(id) {
    this.id = id;
    this.pending = "";
    this.sending = false;
    this.messages = new Map();
    this.term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, scrollback: 5000,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", theme: { background: "#101318" } });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.attachCustomKeyEventHandler((e) => !isShortcut(e));
    this.term.onData((data) => this.type(data));
    this.term.onResize(({ cols, rows }) => this.resized(cols, rows));

    this.title = h("h1");
    this.badgeSlot = h("span");
    this.actions = h("div", { class: "actions" });
    this.banner = h("div", { class: "waiting-banner", hidden: true });
    this.note = h("p", { class: "error", role: "alert" });
    this.termEl = h("div", { class: "term", dataset: { terminal: id } });
    // Pasted text goes in as one bracketed paste: markers inside it are removed
    // first, so a hostile clipboard cannot end the paste and type the rest as keys.
    this.termEl.addEventListener("paste", (e) => {
      const text = e.clipboardData?.getData("text/plain");
      if (!text) return;
      e.preventDefault();
      e.stopImmediatePropagation();
      this.term.paste(withoutPasteMarkers(text));
    }, true);
    this.list = h("div", { class: "messages", "aria-live": "polite" });
    this.input = h("textarea", { placeholder: "Reply… (Enter sends, Shift+Enter for a new line)", "aria-label": "Reply" });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.reply(); }
    });
    this.root = h("section", { class: "instance-view", hidden: true, dataset: { instance: id } },
      h("div", { class: "view-head" }, this.title, this.badgeSlot, h("span", { class: "spacer" }), this.actions),
      this.banner, this.note,
      h("div", { class: "view" },
        h("div", { class: "term-wrap" }, this.termEl),
        h("div", { class: "side card" }, h("h2", {}, "Messages"), this.list,
          h("form", { class: "reply", onsubmit: (e) => { e.preventDefault(); this.reply(); } }, this.input,
            h("div", { class: "actions" }, h("button", {}, "Send"),
              h("span", { class: "hint" }, "Typed at once if it waits, otherwise held until it does."))))));
    this.snapshots = 0;
    this.statusChanged();
  }

  // The stream is open only while this view is on screen (see `streaming` below); a
  // fresh connection starts with a snapshot of the screen, so nothing missed matters.
  connect() {
    if (this.stream || this.ended || this.disposed) return;
    const stream = new EventSource(`/api/instances/${this.id}/stream`);
    this.stream = stream;
    stream.addEventListener("snapshot", (e) => {
      const snap = JSON.parse(e.data);
      this.term.reset();
      if (snap.cols && snap.rows && (snap.cols !== this.term.cols || snap.rows !== this.term.rows)) {
        this.term.resize(snap.cols, snap.rows);
      }
      this.term.write(snap.data, () => this.refit());
      if (this.snapshots++ > 0) this.loadMessages(); // any that came while it was closed
    });
    stream.addEventListener("output", (e) => this.term.write(JSON.parse(e.data).data));
    stream.addEventListener("message", (e) => this.addMessage(JSON.parse(e.data).message));
    stream.addEventListener("end", () => { this.disconnect(); this.ended = true; });
    stream.onerror = () => {
      if (stream.readyState !== EventSource.CLOSED || this.stream !== stream) return;
      this.stream = null;
      setTimeout(() => { if (streaming === this) this.connect(); }, 2000);
    };
  }

  disconnect() {
    this.stream?.close();
    this.stream = null;
  }

  get instance() { return state.instances.get(this.id); }

  show(visible) {
    this.root.hidden = !visible;
    if (!visible) {
      if (streaming === this) stream(null);
      return;
    }
    if (!this.opened) { this.term.open(this.termEl); this.opened = true; } // measured once visible
    stream(this);
    this.refit();
    this.term.focus();
  }

  refit() {
    if (this.root.hidden || !this.termEl.offsetWidth) return;
    try { this.fit.fit(); } catch { /* not measurable yet */ }
  }

  resized(cols, rows) {
    clearTimeout(this.resizeTimer);
    this.resizeTimer = setTimeout(() => {
      const instance = this.instance;
      if (!instance || FINAL.has(instance.status)) return;
      api("POST", `/api/instances/${this.id}/resize`, { cols, rows }).catch(() => {});
    }, 120);
  }

  type(data) {
    this.pending += data;
    if (!this.sending) this.flush();
  }

  async flush() {
    this.sending = true;
    while (this.pending) {
      const data = this.pending;
      this.pending = "";
      try {
        await api("POST", `/api/instances/${this.id}/input`, { data });
        this.note.textContent = "";
      } catch (e) {
        this.note.textContent = `Not typed: ${e.message}`;
      }
    }
    this.sending = false;
  }

  statusChanged() {
    const instance = this.instance;
    if (!instance) { this.title.textContent = `Instance ${short(this.id)}`; return; }
    this.title.replaceChildren(said(agentName(instance.agent_id)), ` · ${short(this.id)}`);
    this.badgeSlot.replaceChildren(badge(instance));
    this.banner.hidden = instance.status !== "awaiting_input";
    const prompt = instance.status === "awaiting_input" ? instance.prompt || "" : "";
    if (this.banner.dataset.shown !== prompt) {
      this.banner.dataset.shown = prompt;
      this.banner.replaceChildren(h("strong", {}, "Waiting for you."),
        prompt ? h("div", {}, attribution(instance, "asks"), quote(prompt, { lines: 4, chars: 400 })) : null);
    }
    const final = FINAL.has(instance.status);
    this.actions.replaceChildren(
      final ? h("button", { class: "danger", onclick: () => removeInstance(this.id) }, "Delete")
        : h("button", { class: "danger", onclick: () => terminate(this.id) }, "Terminate"),
      h("span", { class: "meta" }, instance.status_reason ? `reason: ${instance.status_reason}` : ""));
    if (instance.status !== this.lastStatus) {
      this.lastStatus = instance.status;
      this.loadMessages(); // a delivery of held messages shows as delivered_at
    }
  }

  async loadMessages() {
    const list = await api("GET", `/api/instances/${this.id}/messages?limit=1000`).catch(() => null);
    if (!list) return;
    this.messages = new Map();
    for (const message of list.reverse()) this.messages.set(message.id, message);
    this.renderMessages();
  }

  addMessage(message) {
    this.messages.set(message.id, message);
    this.renderMessages();
  }

  renderMessages() {
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 8;
    this.list.replaceChildren(...[...this.messages.values()].map((m) => {
      const held = m.sender_type === "user" && !m.delivered_at;
      return h("div", { class: `msg ${m.sender_type}${m.requires_user_input ? " asks" : ""}`, dataset: { message: m.id } },
        quote(m.content, { lines: 12, chars: 2000 }),
        m.options && m.options.length ? h("div", { class: "actions" }, m.options.map((o) => {
          // What the button shows is what it types; anything invisible is shown, and named.
          const shown = visible(o);
          return h("button", { class: "ghost option", title: shown === o ? `Types: ${o}` : `Types exactly: ${JSON.stringify(o)}`,
            onclick: () => { this.input.value = o; this.reply(); } }, h("bdi", {}, shown));
        })) : null,
        h("span", { class: "when" }, `${m.sender_type === "user" ? "you" : "agent"} · ${when(m.created_at)}`,
          m.sender_type === "user" ? (held ? " · held until it waits" : " · delivered") : ""));
    }));
    if (this.messages.size === 0) this.list.append(h("p", { class: "hint" }, "No messages yet."));
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  async reply() {
    const content = this.input.value.trim();
    if (!content) return;
    try {
      const message = await api("POST", `/api/instances/${this.id}/messages`, { content });
      this.input.value = "";
      this.note.textContent = "";
      this.addMessage(message);
    } catch (e) {
      this.note.textContent = `Not sent: ${e.message}`;
    }
  }

  dispose() {
    this.disposed = true;
    if (streaming === this) streaming = null;
    this.disconnect();
    this.term.dispose();
    this.root.remove();
  }
}

async function startInstance(agentId) {
  try {
    const instance = await api("POST", `/api/agents/${agentId}/instances`, {});
    state.instances.set(instance.id, instance);
    location.hash = `#/i/${instance.id}`;
  } catch (e) {
    alert(`Could not start: ${e.message}`);
  }
}

async function terminate(id) {
  try { await api("PUT", `/api/instances/${id}`, { status: "terminated" }); } catch (e) { alert(e.message); }
}

async function removeInstance(id) {
  if (!confirm("Delete this instance, its transcript and its messages?")) return;
  try {
    await api("DELETE", `/api/instances/${id}`);
    state.instances.delete(id);
    closeTab(id);
    refresh();
  } catch (e) { alert(e.message); }
}

// ---------------------------------------------------------------- pages

const page = document.getElementById("page");
let current = null; // { name, update(), unmount() }

function overviewPage() {
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
    const asks = waiting();
    const parts = [];
    if (asks.length) {
      parts.push(h("section", { class: "card waiting", id: "waiting" },
        h("h2", {}, `${asks.length} waiting for you`),
        asks.map((i) => h("div", { class: "waiting-item", dataset: { instance: i.id } },
          h("div", { class: "grow" }, h("strong", {}, said(agentName(i.agent_id))), ` · ${short(i.id)} `, badge(i),
            i.prompt ? h("div", { class: "prompt" }, attribution(i, "asks"), quote(i.prompt, { lines: 3, chars: 300 }))
              : h("div", { class: "prompt hint" }, "(waiting for input)")),
          h("div", {}, h("a", { class: "button", href: `#/i/${i.id}` }, "Answer"))))));
    }
    parts.push(h("div", { class: "agents" }, agents.map(agentCard)));
    root.replaceChildren(...parts);
  };
  return { root, update };
}

function agentCard(agent) {
  const mine = [...state.instances.values()].filter((i) => i.agent_id === agent.id);
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
      h("span", { class: "actions" },
        h("a", { class: "button ghost", href: `#/i/${i.id}` }, "Open"),
        FINAL.has(i.status) ? h("button", { class: "danger", onclick: () => removeInstance(i.id) }, "Delete")
          : h("button", { class: "danger", onclick: () => terminate(i.id) }, "Terminate"))))),
    mine.length === 0 ? h("p", { class: "hint" }, "No instances yet: Start runs one.") : null);
}

function showFieldError(form, error) {
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  const general = form.querySelector(".form-error");
  general.textContent = "";
  if (!error) return;
  const field = error.field || (error.message.match(/^([\w.]+):/) || [])[1];
  const input = field && form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (input) {
    input.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    input.after(h("div", { class: "field-error", role: "alert" }, error.message));
    input.focus();
  } else {
    general.textContent = error.message;
  }
}

const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);

function agentsPage(editId) {
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
  const secret = h("input", { type: "password", autocomplete: "new-password", dataset: { field: "settings.trigger_secret" },
    placeholder: s.has_trigger_secret ? "set (leave empty to keep)" : "none" });
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, agent ? `Edit ${agent.name}` : "New agent"),
    field("Name", "name", name, "Letters, digits, - _ . (unique)"),
    field("Project directory", "project_path", path, "An existing directory on the server"),
    field("Command", "command", command, "One argument per line; run directly, never through a shell"),
    field("Description", "description", description),
    field("Environment", "env", env, "One variable a row; values are used exactly as written"),
    h("label", { class: "inline" }, autoStart, "Start one instance whenever the server starts"),
    field("Instances at once", "max", max),
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
    await api("DELETE", `/api/agents/${agent.id}`);
    location.hash = "#/agents";
  } catch (e) { alert(e.message); }
}

function tasksPage() {
  const status = h("select", { "aria-label": "Status filter" }, h("option", { value: "" }, "any status"),
    ["pending", "in_progress", "done", "failed"].map((s) => h("option", { value: s }, s.replace("_", " "))));
  const priority = h("select", { "aria-label": "Priority filter" }, h("option", { value: "" }, "any priority"),
    ["high", "medium", "low"].map((p) => h("option", { value: p }, p)));
  const table = h("div");
  const title = h("input", { dataset: { field: "title" }, required: true });
  const description = h("textarea", { dataset: { field: "description" } });
  const newPriority = h("select", { dataset: { field: "priority" } }, ["medium", "high", "low"].map((p) => h("option", { value: p }, p)));
  // One form adds a task or, after "Edit" on a row, changes that task.
  let editing = null;
  const heading = h("h1", {}, "New task");
  const submit = h("button", {}, "Add task");
  const cancel = h("button", { type: "button", class: "ghost", hidden: true, onclick: () => edit(null) }, "Cancel");
  const form = h("form", { class: "card", novalidate: true }, heading,
    h("label", {}, "Title"), title, h("label", {}, "Description"), description, h("label", {}, "Priority"), newPriority,
    h("p", { class: "form-error error", role: "alert" }), h("div", { class: "actions" }, submit, cancel));
  const edit = (task) => {
    editing = task;
    heading.textContent = task ? `Edit task #${task.id}` : "New task";
    submit.textContent = task ? "Save" : "Add task";
    cancel.hidden = !task;
    title.value = task?.title ?? "";
    description.value = task?.description ?? "";
    newPriority.value = task?.priority ?? "medium";
    showFieldError(form, null);
    if (task) title.focus();
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { title: title.value, description: description.value, priority: newPriority.value };
    try {
      const task = editing ? await api("PUT", `/api/tasks/${editing.id}`, body) : await api("POST", "/api/tasks", body);
      state.tasks.set(task.id, task);
      edit(null);
      update();
    } catch (err) { showFieldError(form, err); }
  });
  const change = async (task, patch) => {
    try { state.tasks.set(task.id, await api("PUT", `/api/tasks/${task.id}`, patch)); update(); } catch (e) { alert(e.message); }
  };
  const update = () => {
    const agents = [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    const shown = [...state.tasks.values()].sort((a, b) => b.id - a.id)
      .filter((t) => (!status.value || t.status === status.value) && (!priority.value || t.priority === priority.value));
    table.replaceChildren(shown.length ? h("table", {},
      h("tr", {}, h("th", {}, "#"), h("th", {}, "Task"), h("th", {}, "Status"), h("th", { class: "hide-narrow" }, "Priority"), h("th", {}, "Run with")),
      shown.map((t) => {
        const worker = [...state.instances.values()].filter((i) => i.task_id === t.id)
          .sort((a, b) => String(b.last_activity_at).localeCompare(String(a.last_activity_at)))[0];
        const statusSelect = h("select", { "aria-label": "Status", onchange: (e) => change(t, { status: e.target.value }) },
          ["pending", "in_progress", "done", "failed"].map((s) => h("option", { value: s, selected: s === t.status }, s.replace("_", " "))));
        const prioritySelect = h("select", { "aria-label": "Priority", onchange: (e) => change(t, { priority: e.target.value }) },
          ["high", "medium", "low"].map((p) => h("option", { value: p, selected: p === t.priority }, p)));
        const agentSelect = h("select", { "aria-label": "Agent" }, agents.map((a) => h("option", { value: a.id }, a.name)));
        return h("tr", { dataset: { task: t.id } }, h("td", {}, t.id),
          h("td", {}, h("strong", {}, said(t.title)), t.description ? quote(t.description, { lines: 3, chars: 300, cls: "meta" }) : null,
            worker ? h("div", {}, badge(worker), " ", h("a", { href: `#/i/${worker.id}` }, `instance ${short(worker.id)}`)) : null),
          h("td", {}, statusSelect),
          h("td", { class: "hide-narrow" }, prioritySelect),
          h("td", {}, agents.length ? h("div", { class: "actions" }, agentSelect,
            h("button", { onclick: () => runTask(t, agentSelect.value) }, "Run")) : h("span", { class: "hint" }, "no agents"),
          h("div", { class: "actions" }, h("button", { class: "ghost", onclick: () => edit(t) }, "Edit"),
            h("button", { class: "danger", title: "Delete task", onclick: () => deleteTask(t) }, "Delete"))));
      })) : h("p", { class: "hint" }, "No tasks match."));
  };
  status.onchange = update;
  priority.onchange = update;
  return { root: h("div", { class: "split" }, h("div", {}, h("h1", {}, "Tasks"), h("div", { class: "filters" }, status, priority), table), form), update };
}

async function runTask(task, agentId) {
  try {
    const instance = await api("POST", `/api/tasks/${task.id}/run`, { agent_id: agentId });
    state.instances.set(instance.id, instance);
    location.hash = `#/i/${instance.id}`;
  } catch (e) { alert(`Could not run: ${e.message}`); }
}

async function deleteTask(task) {
  if (!confirm(`Delete task #${task.id}?`)) return;
  try { await api("DELETE", `/api/tasks/${task.id}`); state.tasks.delete(task.id); refresh(); } catch (e) { alert(e.message); }
}

function webhooksPage(hookId) {
  const root = h("div", { class: "split" });
  const list = h("div");
  const log = h("div");
  let hooks = [];
  const load = async () => {
    hooks = await api("GET", "/api/webhooks?limit=1000").catch(() => hooks);
    if (hookId) {
      const attempts = await api("GET", `/api/webhooks/${hookId}/deliveries?limit=200`).catch(() => []);
      log.replaceChildren(h("h2", {}, "Delivery attempts"), attempts.length ? h("table", {},
        h("tr", {}, h("th", {}, "When"), h("th", {}, "Event"), h("th", {}, "Attempt"), h("th", {}, "Answer"), h("th", {}, "State"), h("th", {})),
        attempts.map((a) => h("tr", { dataset: { attempt: a.id } }, h("td", {}, when(a.at)), h("td", {}, `${a.event_type} #${a.event_id}`), h("td", {}, a.attempt),
          h("td", {}, a.status_code ?? "—", a.error ? h("div", { class: "meta" }, a.error) : null, h("div", { class: "meta" }, `${a.duration_ms} ms`)),
          h("td", {}, a.delivery_state),
          h("td", {}, h("button", { class: "ghost", onclick: async () => {
            try { await api("POST", `/api/webhooks/${hookId}/redeliver`, { event_id: a.event_id }); load(); } catch (e) { alert(e.message); }
          } }, "Redeliver"))))) : h("p", { class: "hint" }, "No attempts yet."));
    } else log.replaceChildren();
    update();
  };
  const agents = () => [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
  const url = h("input", { dataset: { field: "url" }, placeholder: "https://example.com/hook", required: true });
  const events = h("input", { dataset: { field: "events" }, value: "instance.status", placeholder: "instance.status, message.created or *" });
  const agentSelect = h("select", { dataset: { field: "agent_id" } });
  const format = h("select", { dataset: { field: "format" } }, h("option", { value: "standard" }, "standard (signed JSON)"),
    h("option", { value: "slack" }, "slack ({\"text\"} for chat incoming webhooks)"));
  const secretBox = h("div");
  const form = h("form", { class: "card", novalidate: true }, h("h1", {}, "New webhook"),
    h("label", {}, "URL"), url, h("label", {}, "Events"), events, h("div", { class: "hint" }, "Comma-separated types, a prefix such as instance.*, or *"),
    h("label", {}, "Only this agent"), agentSelect, h("label", {}, "Format"), format,
    h("p", { class: "form-error error", role: "alert" }), h("button", {}, "Subscribe"), secretBox);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { url: url.value.trim(), events: events.value.split(",").map((x) => x.trim()).filter(Boolean), format: format.value };
    if (agentSelect.value) body.agent_id = agentSelect.value;
    try {
      const hook = await api("POST", "/api/webhooks", body);
      showFieldError(form, null);
      url.value = "";
      secretBox.replaceChildren(h("p", {}, "Signing secret (shown only now; receivers verify with it):"),
        h("div", { class: "secret", dataset: { secret: "" } }, hook.secret));
      load();
    } catch (err) { showFieldError(form, err); }
  });
  const update = () => {
    const chosen = agentSelect.value;
    agentSelect.replaceChildren(h("option", { value: "" }, "every agent"), agents().map((a) => h("option", { value: a.id, selected: a.id === chosen }, a.name)));
    list.replaceChildren(h("h1", {}, "Webhooks"), hooks.length ? h("table", {},
      h("tr", {}, h("th", {}, "URL"), h("th", {}, "Events"), h("th", {}, "State"), h("th", {})),
      hooks.map((w) => h("tr", { dataset: { webhook: w.id } },
        h("td", {}, h("div", { class: "meta" }, w.url), w.agent_id ? h("div", { class: "hint" }, `only ${agentName(w.agent_id)}`) : null),
        h("td", {}, w.events.join(", "), w.format === "slack" ? h("div", { class: "hint" }, "slack format") : null),
        h("td", {}, w.active ? "active" : "off", w.disabled_reason ? h("div", { class: "meta" }, w.disabled_reason) : null,
          w.pending_deliveries ? h("div", { class: "hint" }, `${w.pending_deliveries} queued`) : null),
        h("td", {}, h("div", { class: "actions" },
          h("a", { class: "button ghost", href: `#/webhooks/${w.id}` }, "Deliveries"),
          h("button", { class: "ghost", onclick: async () => { await api("PUT", `/api/webhooks/${w.id}`, { active: !w.active }).catch((e) => alert(e.message)); load(); } }, w.active ? "Turn off" : "Turn on"),
          h("button", { class: "danger", onclick: async () => { if (confirm("Delete this webhook and its log?")) { await api("DELETE", `/api/webhooks/${w.id}`).catch((e) => alert(e.message)); location.hash = "#/webhooks"; load(); } } }, "Delete")))))) : h("p", { class: "hint" }, "No webhooks yet."), log);
  };
  root.append(list, form);
  load();
  const timer = setInterval(load, 5000);
  return { root, update, unmount: () => clearInterval(timer) };
}

// ---------------------------------------------------------------- routing

function route() {
  if (!state.started) return;
  const hash = location.hash || "#/";
  const tab = currentTab();
  for (const [id, view] of tabs.views) view.show(id === tab);
  for (const a of document.querySelectorAll("#nav a")) a.classList.remove("current");
  if (tab) {
    current?.unmount?.();
    current = null;
    page.hidden = true;
    views.hidden = false;
    openTab(tab).show(true);
    renderTabs();
    updateTitle();
    return;
  }
  views.hidden = true;
  page.hidden = false;
  const [, name = "", arg] = hash.match(/^#\/([a-z]*)\/?(.*)$/) || [];
  const make = { "": overviewPage, tasks: tasksPage, agents: () => agentsPage(arg), webhooks: () => webhooksPage(arg) }[name] || overviewPage;
  current?.unmount?.();
  current = make();
  page.replaceChildren(current.root);
  current.update();
  document.querySelector(`#nav a[data-page="${name || "overview"}"]`)?.classList.add("current");
  renderTabs();
  updateTitle();
}

function updateTitle() {
  const n = waiting().length;
  document.title = n ? `(${n}) Switchboard` : "Switchboard";
}

let scheduled = false;
function refresh() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const editing = current && document.activeElement && current.root.contains(document.activeElement)
      && /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName);
    if (current && !editing) current.update();
    for (const view of tabs.views.values()) view.statusChanged();
    renderTabs();
    updateTitle();
  });
}

function isShortcut(e) {
  return e.type === "keydown" && e.altKey && (/^Digit[0-9]$/.test(e.code) || e.code === "BracketLeft" || e.code === "BracketRight");
}

document.addEventListener("keydown", (e) => {
  if (!isShortcut(e) || !state.started) return;
  e.preventDefault();
  const at = tabs.open.indexOf(currentTab());
  let target = null;
  if (e.code === "Digit0") { location.hash = "#/"; return; }
  if (e.code.startsWith("Digit")) target = tabs.open[Number(e.code.slice(5)) - 1];
  if (e.code === "BracketRight") target = tabs.open[(at + 1) % tabs.open.length];
  if (e.code === "BracketLeft") target = tabs.open[(at - 1 + tabs.open.length) % tabs.open.length];
  if (target) location.hash = `#/i/${target}`;
});

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { for (const view of tabs.views.values()) view.refit(); }, 100);
});
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- sign-in and start

const signin = document.getElementById("signin");
const signinError = document.getElementById("signin-error");

function showSignIn() {
  if (!signin.hidden) return;
  signin.hidden = false;
  page.hidden = true;
  views.hidden = true;
  tabStrip.hidden = true;
  document.getElementById("nav").hidden = true;
  document.getElementById("signin-token").focus();
}

/** Exchanges the token, or a sign-in link's code, for the session cookie. */
async function exchange(credential) {
  try {
    await api("POST", "/api/session", credential);
    return true;
  } catch {
    return false;
  }
}

async function start() {
  signin.hidden = true;
  document.getElementById("nav").hidden = false;
  if (!state.started) {
    state.started = true;
    document.getElementById("main").append(views);
    updateNotifyButton();
    connect();
  }
  await loadSnapshot();
  route();
}

document.getElementById("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = document.getElementById("signin-token");
  if (await exchange({ token: input.value.trim() })) {
    input.value = "";
    signinError.textContent = "";
    await start();
  } else {
    signinError.textContent = "That token was not accepted.";
  }
});

// The printed address carries a one-time sign-in code, never the token: even kept
// in history it is of no use once it has been exchanged here (or 10 minutes on).
const fromAddress = new URLSearchParams(location.hash.slice(1)).get("login");
if (fromAddress) {
  history.replaceState(null, "", location.pathname + location.search);
  if (!(await exchange({ code: fromAddress }))) {
    signinError.textContent = "That sign-in link was used already or has expired. Run `switchboard login-link` for a new one, or paste the token.";
  }
}
const session = await api("GET", "/api/session").catch(() => ({ signed_in: false }));
if (session.signed_in) await start();
else showSignIn();
