// Webhooks: subscriptions, their secret shown once, and the delivery log.

import { h, when, showFieldError } from "../dom.js";
import { api } from "../api.js";
import { state, agentName } from "../state.js";

export function webhooksPage(hookId) {
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
