// What waits for you, answered in place: a reply field and quick buttons per entry,
// identical questions grouped with one answer for all, and every reply naming the
// question it answers (in_reply_to), so a question that changed meanwhile is never
// answered by mistake.

import { h, short, said, quote, readOffScreen } from "./dom.js";
import { api } from "./api.js";
import { state, agentName, waiting, badge, attribution } from "./state.js";
import { refresh } from "./router.js";

// Replies on their way: instance id → wait_id answered (hidden until the server says).
const answering = new Map();
// Per instance: the last refusal to show (a changed question, or an error).
const notes = new Map();
export const prefs = { hideMuted: localStorage.getItem("switchboard.hideMuted") === "1" };

export const muted = (instance) => state.agents.get(instance.agent_id)?.settings?.notification_enabled === false;

/** Choices a prompt clearly offers: [{label, send, isDefault}]. */
export function choices(prompt) {
  const text = String(prompt || "");
  const tail = text.split("\n").filter((l) => l.trim()).slice(-12);
  const last = tail.at(-1) || "";
  const yn = last.match(/[[(]\s*(y(?:es)?)\s*\/\s*(no?)\s*[\])]/i);
  if (yn) {
    const [yes, no] = [yn[1], yn[2]];
    const upper = (s) => s[0] === s[0].toUpperCase() && s[0] !== s[0].toLowerCase();
    return [
      { label: yes.toLowerCase(), send: yes.toLowerCase(), isDefault: upper(yes) },
      { label: no.toLowerCase(), send: no.toLowerCase(), isDefault: upper(no) },
    ];
  }
  const menu = [];
  for (const line of tail) {
    const m = line.match(/^\s*(?:[❯>›*]\s*)?(\d{1,2})[.)]\s+(\S.{0,60})$/);
    if (m) menu.push({ label: `${m[1]}. ${m[2].trim()}`, send: m[1], isDefault: /^\s*[❯>›*]/.test(line) });
  }
  const numbers = menu.map((c) => Number(c.send));
  const inOrder = numbers.length >= 2 && numbers.every((n, i) => n === numbers[0] + i);
  return inOrder ? menu : [];
}

/** The quick buttons of an instance: the agent's options when it gave some, else the prompt's choices. */
function quickButtons(instance, send) {
  const offered = (instance.options || []).map((o) => ({ label: o, send: o, isDefault: false }));
  const list = offered.length ? offered : choices(instance.prompt);
  return list.map((c) => h("button", {
    type: "button", class: `quick${c.isDefault ? " default" : ""}`, title: c.isDefault ? "The default" : null,
    onclick: () => send(c.send),
  }, said(c.label)));
}

// Replies being typed, kept across redraws with the question they were begun for.
const drafts = new Map();

function replyRow(instance, sendText, label) {
  const input = h("input", { class: "reply", type: "text", autocomplete: "off", placeholder: "Reply, then Enter",
    "aria-label": label, dataset: { reply: instance.id }, value: drafts.get(instance.id)?.text ?? "" });
  input.addEventListener("input", () => {
    const begun = drafts.get(instance.id);
    const waits = begun?.waits ?? (instance.members ? new Map(instance.members.map(([i, w]) => [i.id, w])) : null);
    if (input.value) drafts.set(instance.id, { text: input.value, waitId: begun?.waitId ?? instance.wait_id, waits });
    else drafts.delete(instance.id);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && input.value.length) {
      e.preventDefault();
      const text = input.value;
      drafts.delete(instance.id);
      sendText(text);
    }
    if (e.key === "Escape") input.blur();
  });
  return h("div", { class: "reply-row" }, input, quickButtons(instance, sendText),
    h("a", { class: "button ghost open", href: `#/i/${instance.id}` }, "Open"));
}

/** Allow / Deny buttons for the permission request an instance waits on. */
export function approvalButtons(instance, after) {
  const decide = (decision) => async () => {
    document.activeElement?.blur?.();
    answering.set(instance.id, instance.wait_id);
    notes.delete(instance.id);
    refresh();
    try {
      await api("POST", `/api/approvals/${instance.approval.id}`, { decision });
      after?.(decision);
    } catch (e) {
      answering.delete(instance.id);
      notes.set(instance.id, `Not decided: ${e.message || `HTTP ${e.status}`}`);
      refresh();
    }
  };
  return h("div", { class: "reply-row approval", dataset: { approval: instance.approval.id } },
    h("button", { type: "button", class: "quick default allow", onclick: decide("allow") }, "Allow"),
    h("button", { type: "button", class: "quick deny", onclick: decide("deny") }, "Deny"),
    h("a", { class: "button ghost open", href: `#/i/${instance.id}` }, "Open"));
}

/** Sends `content` as the reply to what `instance` asks now; hides the entry at once. */
async function answer(instance, content, waitId) {
  document.activeElement?.blur?.(); // the page redraws only when nothing is being typed
  answering.set(instance.id, waitId);
  notes.delete(instance.id);
  refresh();
  try {
    await api("POST", `/api/instances/${instance.id}/messages`, { content, in_reply_to: waitId });
  } catch (e) {
    answering.delete(instance.id);
    notes.set(instance.id, refusal(instance, e.status, e.code, e.message, e.now));
    refresh();
  }
}

function refusal(instance, status, code, message, now) {
  if (code === "moved_on" && now) {
    Object.assign(instance, { status: now.status, prompt: now.prompt, wait_id: now.wait_id });
    return now.prompt ? "Not sent: the question changed while you answered. It asks now:" : `Not sent: it is ${now.status.replace("_", " ")} now.`;
  }
  return `Not sent: ${message || `HTTP ${status}`}`;
}

/** One answer for every instance of a group, each naming its own question. */
async function answerAll(group, content) {
  document.activeElement?.blur?.();
  for (const [i, waitId] of group) { answering.set(i.id, waitId); notes.delete(i.id); }
  refresh();
  try {
    const { results } = await api("POST", "/api/messages/batch",
      { content, to: group.map(([i, waitId]) => ({ instance_id: i.id, in_reply_to: waitId })) });
    for (const r of results) {
      if (r.status === 201) continue;
      const instance = state.instances.get(r.instance_id);
      answering.delete(r.instance_id);
      if (instance) notes.set(instance.id, refusal(instance, r.status, r.error?.code, r.error?.message, r.error?.now));
    }
  } catch (e) {
    for (const [i] of group) { answering.delete(i.id); notes.set(i.id, `Not sent: ${e.message}`); }
  }
  refresh();
}

/** What is shown as waiting: not hidden by an answer on its way (until it waits on something new). */
export function shownWaiting() {
  return waiting().filter((i) => {
    const sent = answering.get(i.id);
    if (sent !== undefined && sent === i.wait_id) return false;
    if (sent !== undefined) answering.delete(i.id);
    return !(prefs.hideMuted && muted(i));
  });
}

function entry(instance) {
  const note = notes.get(instance.id);
  // The question as first shown to whoever is typing (a draft keeps it), else as shown now.
  const shownWait = drafts.get(instance.id)?.waitId ?? instance.wait_id;
  return h("div", { class: `waiting-item${muted(instance) ? " muted" : ""}`, dataset: { instance: instance.id }, tabindex: "-1" },
    h("div", { class: "grow" },
      h("strong", {}, said(agentName(instance.agent_id))), ` · ${short(instance.id)} `, badge(instance),
      muted(instance) ? h("span", { class: "muted-flag", title: "Its agent's notifications are off" }, " muted") : null,
      note ? h("div", { class: "note error", role: "alert" }, note) : null,
      instance.prompt ? h("div", { class: "prompt" }, attribution(instance, "asks"), quote(instance.prompt, { lines: 3, chars: 300, tail: readOffScreen(instance) }))
        : h("div", { class: "prompt hint" }, "(waiting for input)"),
      // A permission request is decided, not typed into; otherwise the question as
      // shown now: a reply names it, whatever the instance asks by the time it is sent.
      instance.approval ? approvalButtons(instance)
        : replyRow(instance, (text) => answer(instance, text, shownWait), `Reply to ${agentName(instance.agent_id)} ${short(instance.id)}`)));
}

function groupBlock(group) {
  const first = group[0];
  const key = `group-${first.id}`;
  const shown = group.map((i) => [i, drafts.get(key)?.waits?.get(i.id) ?? i.wait_id]);
  const agents = [...new Set(group.map((i) => agentName(i.agent_id)))];
  const who = agents.length === 1 ? `${group.length} instances of ${agents[0]}` : `${group.length} instances`;
  const all = { ...first, id: key, members: shown };
  const details = h("details", { class: "group-members" }, h("summary", {}, "Answer one by one"), group.map(entry));
  return h("div", { class: "waiting-group", dataset: { group: group.map((i) => i.id).join(" ") } },
    h("div", { class: "group-head" }, h("strong", {}, `${who} ask:`)),
    h("div", { class: "prompt" }, quote(first.prompt, { lines: 3, chars: 300, tail: readOffScreen(first) })),
    replyRow(all, (text) => answerAll(shown, text), `Reply to all ${group.length}`),
    details);
}

/** The waiting section, or null when nothing waits. */
export function waitingSection() {
  const asks = shownWaiting();
  const mutedCount = waiting().filter(muted).length;
  if (!asks.length && !mutedCount) return null;
  // Identical questions (same text, two or more) are one group.
  const byPrompt = new Map();
  for (const i of asks) {
    const key = (i.prompt || "").trim();
    if (!key || i.approval) continue; // each permission request is decided on its own
    byPrompt.set(key, [...(byPrompt.get(key) || []), i]);
  }
  const placed = new Set();
  const blocks = [];
  for (const i of asks) {
    if (placed.has(i.id)) continue;
    const group = byPrompt.get((i.prompt || "").trim()) || [];
    if (group.length > 1) {
      group.forEach((g) => placed.add(g.id));
      blocks.push(groupBlock(group));
    } else {
      placed.add(i.id);
      blocks.push(entry(i));
    }
  }
  const hide = h("input", { type: "checkbox", checked: prefs.hideMuted, onchange: (e) => {
    prefs.hideMuted = e.target.checked;
    localStorage.setItem("switchboard.hideMuted", prefs.hideMuted ? "1" : "0");
    refresh();
  } });
  return h("section", { class: "card waiting", id: "waiting" },
    h("div", { class: "waiting-head" }, h("h2", {}, `${asks.length} waiting for you`),
      mutedCount ? h("label", { class: "inline hint" }, hide, ` Hide muted (${mutedCount})`) : null),
    blocks);
}
