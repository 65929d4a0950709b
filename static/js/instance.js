// Instance tabs: each open instance's terminal, messages and reply box.

import { Terminal } from "/static/vendor/xterm/xterm.mjs";
import { FitAddon } from "/static/vendor/xterm/addon-fit.mjs";
import { h, short, when, said, quote, visible, withoutPasteMarkers, readOffScreen } from "./dom.js";
import { api } from "./api.js";
import { FINAL, MAX_TABS, badge, state, agentName, attribution, usage } from "./state.js";
import { refresh } from "./router.js";
import { ChangesPanel, deleteWithWork } from "./changes.js";
import { approvalButtons } from "./waiting.js";

// ---------------------------------------------------------------- instance tabs

export const tabs = { open: JSON.parse(localStorage.getItem("switchboard.tabs") || "[]"), views: new Map() };
export const tabStrip = document.getElementById("tabs");
export const views = h("div", { id: "views" });

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

export function openTab(id) {
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

export function closeTab(id, navigate = true) {
  tabs.open = tabs.open.filter((t) => t !== id);
  saveTabs();
  const view = tabs.views.get(id);
  if (view) { view.dispose(); tabs.views.delete(id); }
  if (navigate && currentTab() === id) location.hash = tabs.open.length ? `#/i/${tabs.open.at(-1)}` : "#/";
  renderTabs();
}

export function currentTab() {
  const match = location.hash.match(/^#\/i\/([0-9a-f-]{36})$/);
  return match ? match[1] : null;
}

export function renderTabs() {
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

export class InstanceView {
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
    this.branch = h("span", { class: "meta branch" });
    this.changes = new ChangesPanel(id);
    this.showing = "terminal";
    this.switcher = h("div", { class: "switcher", role: "tablist", hidden: true },
      h("button", { type: "button", class: "ghost", role: "tab", dataset: { show: "terminal" }, onclick: () => this.showPanel("terminal") }, "Terminal"),
      h("button", { type: "button", class: "ghost", role: "tab", dataset: { show: "changes" }, onclick: () => this.showPanel("changes") }, "Changes"));
    this.main = h("div", { class: "view" },
        h("div", { class: "term-wrap" }, this.termEl),
        h("div", { class: "side card" }, h("h2", {}, "Messages"), this.list,
          h("form", { class: "reply", onsubmit: (e) => { e.preventDefault(); this.reply(); } }, this.input,
            h("div", { class: "actions" }, h("button", {}, "Send"),
              h("span", { class: "hint" }, "Typed at once if it waits, otherwise held until it does.")))));
    this.root = h("section", { class: "instance-view", hidden: true, dataset: { instance: id } },
      h("div", { class: "view-head" }, this.title, this.badgeSlot, this.branch, this.switcher, h("span", { class: "spacer" }), this.actions),
      this.banner, this.note, this.main, this.changes.root);
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

  // Terminal or Changes (instances with a worktree only).
  showPanel(which) {
    this.showing = which;
    this.main.hidden = which !== "terminal";
    this.changes.root.hidden = which !== "changes";
    for (const b of this.switcher.querySelectorAll("button")) b.setAttribute("aria-selected", b.dataset.show === which ? "true" : "false");
    if (which === "changes") this.changes.load();
    else this.refit();
  }

  statusChanged() {
    const instance = this.instance;
    if (!instance) { this.title.textContent = `Instance ${short(this.id)}`; return; }
    const ws = instance.workspace;
    this.switcher.hidden = !ws;
    const used = usage(instance);
    const boxed = instance.isolation?.containment === "container"
      ? h("span", { class: "runner", title: "Its program runs in a container, through a container engine" }, "in a container")
      : null;
    this.branch.replaceChildren(...(ws ? ["⎇ ", said(ws.branch)] : []), ...(used ? [ws ? " · " : "", used] : []),
      ...(boxed ? [ws || used ? " · " : "", boxed] : []));
    // Refreshed when it goes quiet (waits or ends), while the tab is on screen.
    if (ws && this.showing === "changes" && instance.status !== this.lastStatus && instance.status !== "active") this.changes.load();
    this.title.replaceChildren(said(agentName(instance.agent_id)), ` · ${short(this.id)}`);
    this.badgeSlot.replaceChildren(badge(instance));
    this.banner.hidden = instance.status !== "awaiting_input";
    const prompt = instance.status === "awaiting_input" ? instance.prompt || "" : "";
    const shown = `${prompt}\u0000${instance.approval?.id || ""}`;
    if (this.banner.dataset.shown !== shown) {
      this.banner.dataset.shown = shown;
      this.banner.replaceChildren(h("strong", {}, "Waiting for you."),
        prompt ? h("div", {}, attribution(instance, "asks"), quote(prompt, { lines: 4, chars: 400, tail: readOffScreen(instance) })) : null,
        instance.approval && instance.status === "awaiting_input" ? approvalButtons(instance) : null);
    }
    const final = FINAL.has(instance.status);
    this.actions.replaceChildren(
      final ? h("button", { class: "danger", onclick: () => removeInstance(this.id) }, "Delete")
        : h("button", { class: "danger", onclick: () => terminate(this.id) }, "Terminate"),
      final && instance.agent_session_id ? h("button", { class: "resume", onclick: () => resume(this.id) }, "Resume") : null,
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

export async function startInstance(agentId) {
  try {
    const instance = await api("POST", `/api/agents/${agentId}/instances`, {});
    state.instances.set(instance.id, instance);
    location.hash = `#/i/${instance.id}`;
  } catch (e) {
    alert(`Could not start: ${e.message}`);
  }
}

export async function resume(id) {
  try {
    const instance = await api("POST", `/api/instances/${id}/resume`, {});
    state.instances.set(instance.id, instance);
    location.hash = `#/i/${instance.id}`;
  } catch (e) { alert(`Could not resume: ${e.message}`); }
}

export async function terminate(id) {
  try { await api("PUT", `/api/instances/${id}`, { status: "terminated" }); } catch (e) { alert(e.message); }
}

export async function removeInstance(id) {
  const worktree = state.instances.get(id)?.workspace;
  const asked = worktree ? "Delete this instance, its transcript, its messages, and its worktree and branch?"
    : "Delete this instance, its transcript and its messages?";
  if (!confirm(asked)) return;
  try {
    if (!await deleteWithWork(`/api/instances/${id}`, "this instance")) return;
    state.instances.delete(id);
    closeTab(id);
    refresh();
  } catch (e) { alert(e.message); }
}

export function isShortcut(e) {
  return e.type === "keydown" && e.altKey && (/^Digit[0-9]$/.test(e.code) || e.code === "BracketLeft" || e.code === "BracketRight");
}
