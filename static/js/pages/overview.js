// The overview: what waits for you first, then every agent with its instances.

import { h, short, said, quote, clampText } from "../dom.js";
import { FINAL, badge, state, agentName, waiting, attribution, usageSlot } from "../state.js";
import { startInstance, terminate, removeInstance } from "../instance.js";

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
      FINAL.has(i.status) ? null : usageSlot(i),
      h("span", { class: "actions" },
        h("a", { class: "button ghost", href: `#/i/${i.id}` }, "Open"),
        FINAL.has(i.status) ? h("button", { class: "danger", onclick: () => removeInstance(i.id) }, "Delete")
          : h("button", { class: "danger", onclick: () => terminate(i.id) }, "Terminate"))))),
    mine.length === 0 ? h("p", { class: "hint" }, "No instances yet: Start runs one.") : null);
}
