// Which page or instance is on screen, and redrawing it when something changed.

import { state, waiting } from "./state.js";
import { tabs, views, openTab, currentTab, renderTabs } from "./instance.js";
import { overviewPage } from "./pages/overview.js";
import { agentsPage } from "./pages/agents.js";
import { tasksPage } from "./pages/tasks.js";
import { webhooksPage } from "./pages/webhooks.js";


export const page = document.getElementById("page");
let current = null; // { name, update(), unmount() }

// ---------------------------------------------------------------- routing

export function route() {
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

export function updateTitle() {
  const n = waiting().length;
  document.title = n ? `(${n}) Switchboard` : "Switchboard";
}

// A redraw between a button's press and its release swaps the button out from under
// the pointer, and the browser then sends no click: the page waits for the release
// (for a second at most: a release outside the window may never be seen).
const HOLD_MS = 1000;
let pressedAt = 0;
let heldBack = false;
addEventListener("pointerdown", () => { pressedAt = performance.now(); }, true);
for (const type of ["pointerup", "pointercancel"]) {
  addEventListener(type, () => {
    pressedAt = 0;
    // After the click this release makes has been handled.
    if (heldBack) { heldBack = false; setTimeout(refresh); }
  }, true);
}

let scheduled = false;
export function refresh() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const held = performance.now() - pressedAt;
    if (pressedAt && held < HOLD_MS) {
      if (!heldBack) {
        heldBack = true;
        setTimeout(() => { if (heldBack) { heldBack = false; refresh(); } }, HOLD_MS - held);
      }
      return;
    }
    const editing = current && document.activeElement && current.root.contains(document.activeElement)
      && /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName);
    // A page that keeps what is being typed across redraws (the overview) is redrawn anyway.
    if (current && (current.keepsFocus || !editing)) current.update();
    for (const view of tabs.views.values()) view.statusChanged();
    renderTabs();
    updateTitle();
  });
}
