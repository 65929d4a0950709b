// Tasks: filters, the list, the form, and running a task with an agent.

import { h, short, said, quote, showFieldError } from "../dom.js";
import { api } from "../api.js";
import { badge, state } from "../state.js";
import { refresh } from "../router.js";

export function tasksPage() {
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
