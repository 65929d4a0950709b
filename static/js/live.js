// The one stream of every change (/api/events), and browser notifications.

import { visible, clampText } from "./dom.js";
import { EVENT_TYPES, state, agentName, loadSnapshot, apply } from "./state.js";
import { refresh } from "./router.js";

// ---------------------------------------------------------------- live events

const conn = document.getElementById("conn");
let source = null;

export function setConnection(up) {
  conn.textContent = up ? "● live" : "Reconnecting…";
  conn.classList.toggle("down", !up);
  conn.title = up ? "Receiving changes as they happen" : "The connection to the server was lost; retrying";
}

export function connect() {
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
export function updateNotifyButton() {
  notifyButton.hidden = !("Notification" in window) || Notification.permission !== "default";
}
notifyButton.addEventListener("click", async () => {
  await Notification.requestPermission();
  updateNotifyButton();
});

export function notifyWaiting(instance) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const agent = state.agents.get(instance.agent_id);
  if (agent && agent.settings && agent.settings.notification_enabled === false) return;
  const asked = instance.prompt ? clampText(instance.prompt, 3, 200) : null;
  const who = `${agentName(instance.agent_id)} · ${instance.id.slice(0, 8)}`;
  const body = asked ? `${who} asks: “${visible(asked.text)}${asked.clamped ? "…" : ""}”` : `${who} is waiting for input.`;
  const note = new Notification(`${agentName(instance.agent_id)} needs you`, { body, tag: instance.id });
  // Takes you there, with the reply box ready.
  note.onclick = () => {
    window.focus();
    location.hash = `#/i/${instance.id}`;
    const focus = (tries) => {
      const box = document.querySelector(`.instance-view[data-instance="${instance.id}"] form.reply textarea`);
      if (box && box.offsetParent) box.focus();
      else if (tries > 0) setTimeout(() => focus(tries - 1), 50);
    };
    focus(40);
  };
}
