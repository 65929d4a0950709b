// What the page knows: agents, instances and tasks, kept current by the event stream.

import { h, short, said } from "./dom.js";
import { api } from "./api.js";
import { tabs } from "./instance.js";
import { notifyWaiting } from "./live.js";
import { refresh } from "./router.js";

export const EVENT_TYPES = ["task.created", "task.updated", "task.deleted", "agent.created", "agent.updated",
  "agent.deleted", "instance.created", "instance.status", "message.created", "approval.requested", "approval.decided"];
export const FINAL = new Set(["completed", "error", "terminated"]);
export const MAX_TABS = 12;

export function badge(instance) {
  let label = instance.status.replace("_", " ");
  if (instance.status === "idle") label = instance.queue_position ? `queued #${instance.queue_position}` : "queued";
  if (FINAL.has(instance.status) && instance.exit_code !== null && instance.exit_code !== undefined) {
    label += ` (${instance.exit_code})`;
  }
  return h("span", { class: `badge ${instance.status}`, dataset: { status: instance.status } }, label);
}

// Where an instance's usage is shown, updated in place as it changes.
export const usageSlot = (instance) => h("span", { class: "usage-slot", dataset: { usage: instance.id } }, usage(instance));

// Memory and CPU of all an instance's processes, flagged near its memory limit.
export function usage(instance) {
  const u = instance.usage;
  if (!u) return null;
  const limit = instance.isolation?.applied?.memory_mb;
  const mib = u.memory_bytes / 1048576;
  const near = Boolean(limit) && !FINAL.has(instance.status) && mib >= 0.9 * limit;
  const text = `${mib < 10 ? mib.toFixed(1) : Math.round(mib)} MiB${limit ? ` of ${limit}` : ""} · ${u.cpu_seconds.toFixed(1)} s CPU`;
  return h("span", { class: `usage${near ? " near-limit" : ""}`, dataset: { near: String(near) },
    title: near ? `Near its memory limit (${limit} MiB): at the limit the kernel ends its largest process`
      : "Memory and CPU time of all its processes" }, near ? `⚠ ${text}` : text);
}

// Usage changes without events: read it again every few seconds while something runs.
export function pollUsage(every = 5000) {
  setInterval(async () => {
    const live = ["active", "awaiting_input"];
    if (document.hidden || ![...state.instances.values()].some((i) => live.includes(i.status))) return;
    const lists = await Promise.all(live.map((s) => api("GET", `/api/instances?status=${s}&limit=1000`).catch(() => [])));
    for (const fresh of lists.flat()) {
      const known = state.instances.get(fresh.id);
      if (known) Object.assign(known, { usage: fresh.usage, isolation: fresh.isolation });
    }
    // In place: redrawing the page would move what someone is reading or clicking.
    for (const slot of document.querySelectorAll("[data-usage]")) {
      const instance = state.instances.get(slot.dataset.usage);
      if (instance && !FINAL.has(instance.status)) slot.replaceChildren(usage(instance) ?? "");
    }
    for (const view of tabs.views.values()) view.statusChanged();
  }, every);
}

// ---------------------------------------------------------------- state

export const state = {
  agents: new Map(),
  instances: new Map(),
  tasks: new Map(),
  lastEventId: null,
  buffered: null, // events that arrive while a snapshot loads
  started: false,
};

export const agentName = (id) => state.agents.get(id)?.name ?? short(id);
export const waiting = () => [...state.instances.values()].filter((i) => i.status === "awaiting_input")
  .sort((a, b) => String(a.last_activity_at).localeCompare(String(b.last_activity_at)));

export async function loadSnapshot() {
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
export function refreshQueuePositions() {
  clearTimeout(positionsTimer);
  positionsTimer = setTimeout(async () => {
    const queued = await api("GET", "/api/instances?status=idle&limit=1000").catch(() => []);
    for (const instance of queued) state.instances.set(instance.id, instance);
    refresh();
  }, 150);
}

export function apply(type, data, live) {
  switch (type) {
    case "task.created": case "task.updated": state.tasks.set(data.task.id, data.task); break;
    case "task.deleted": state.tasks.delete(data.id); break;
    case "agent.created": case "agent.updated": state.agents.set(data.agent.id, data.agent); break;
    case "agent.deleted":
      state.agents.delete(data.id);
      for (const [id, instance] of state.instances) if (instance.agent_id === data.id) state.instances.delete(id);
      break;
    case "instance.created":
      state.instances.set(data.instance.id, data.instance);
      // A queued instance: its place is the registry's, not in the event; ask for it.
      if (data.instance.status === "idle") refreshQueuePositions();
      break;
    case "instance.status": {
      const instance = state.instances.get(data.instance_id);
      if (!instance) {
        api("GET", `/api/instances/${data.instance_id}`).then((i) => { state.instances.set(i.id, i); refresh(); }).catch(() => {});
        break;
      }
      instance.status = data.status;
      instance.status_reason = data.reason;
      instance.prompt = data.status === "awaiting_input" ? data.prompt : null;
      instance.wait_id = data.status === "awaiting_input" ? data.wait_id ?? null : null;
      instance.status_source = data.source ?? null;
      instance.options = data.status === "awaiting_input" ? data.options ?? [] : [];
      if (data.status !== "awaiting_input") instance.approval = null;
      if (data.exit_code !== null && data.exit_code !== undefined) instance.exit_code = data.exit_code;
      instance.last_activity_at = data.at;
      if (data.status !== "idle") instance.queue_position = null;
      if (data.previous === "idle") refreshQueuePositions();
      if (live && data.status === "awaiting_input") notifyWaiting(instance);
      tabs.views.get(instance.id)?.statusChanged();
      break;
    }
    case "message.created": tabs.views.get(data.message.agent_instance_id)?.addMessage(data.message); break;
    case "approval.requested": case "approval.decided": {
      const instance = state.instances.get(data.approval.instance_id);
      if (!instance) break;
      if (data.approval.status === "pending") instance.approval = data.approval;
      else if (instance.approval?.id === data.approval.id) instance.approval = null;
      tabs.views.get(instance.id)?.statusChanged();
      break;
    }
    default: break;
  }
}

export const attribution = (instance, verb) => h("div", { class: "said-by" },
  said(agentName(instance.agent_id)), ` · ${short(instance.id)} ${verb}:`);
