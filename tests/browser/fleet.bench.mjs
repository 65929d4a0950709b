// The dashboard with a fleet: 500 instances, a status event every ~10 ms, in headless
// Chromium against a real server. Prints figures; asserts nothing about speed.
//
//   SWITCHBOARD_BIN=target/release/switchboard node tests/browser/fleet.bench.mjs --minutes 60
//
// Measured: the time until the overview shows all 500 instances; for each
// `instance.status` event, the time from its arrival in the page to the overview
// showing the new status (a second EventSource in the page hears the same events as
// the dashboard's; a MutationObserver sees the entry change); the page's JS heap and
// DOM size at the start and the end.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, openSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MINUTES = arg("minutes", 1);
const INSTANCES = arg("instances", 500);
const FLIPPERS = arg("flippers", 8);
const BIN = process.env.SWITCHBOARD_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
if (!BIN) throw new Error("SWITCHBOARD_BIN names the server binary");

const root = realpathSync(mkdtempSync(join(tmpdir(), "switchboard-fleet-")));
const log = openSync(join(root, "server.log"), "a");
const child = spawn(BIN, ["--bind", "127.0.0.1:0", "--data-dir", join(root, "data"), "--max-instances", String(INSTANCES + 50)],
  { stdio: ["ignore", "pipe", log] });
// The server goes with this script, however it ends.
const stop = () => { try { child.kill("SIGTERM"); } catch { /* gone */ } };
process.on("exit", stop);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => { stop(); process.exit(1); });
const lines = [];
await new Promise((resolve, reject) => {
  createInterface({ input: child.stdout }).on("line", (l) => { lines.push(l); if (lines.length === 2) resolve(); });
  child.on("exit", (code) => reject(new Error(`server exited (${code})`)));
});
const base = lines[0].replace("switchboard listening on ", "");
const token = readFileSync(join(root, "data", "token"), "utf8").trim();
const call = async (method, path, body) => {
  const res = await fetch(base + path, { method, headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
};
const pct = (values, p) => { const s = [...values].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.round(p / 100 * (s.length - 1)))]; };

try {
  const idle = await call("POST", "/api/agents", { name: "idle", project_path: root, command: ["sleep", "86400"], settings: { max_concurrent_instances: 1000 } });
  // Waits on its terminal for 100 ms, then prints: active ⇄ awaiting_input, about ten events a second.
  const flipper = await call("POST", "/api/agents", { name: "flipper", project_path: root,
    command: ["bash", "-c", "while :; do read -t 0.1 x; echo tick; done"], settings: { max_concurrent_instances: 100, idle_ms: 50 } });
  for (let k = 0; k < INSTANCES - FLIPPERS; k++) await call("POST", `/api/agents/${idle.id}/instances`, {});
  console.error(`… ${INSTANCES - FLIPPERS} idle instances started`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--enable-precise-memory-info"] });
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  const started = Date.now();
  await page.goto(`${lines[1].replace("switchboard dashboard: ", "")}`);
  await page.waitForFunction((n) => document.querySelectorAll("li[data-instance]").length >= n, INSTANCES - FLIPPERS, { timeout: 120_000 });
  const firstRender = Date.now() - started;
  console.error(`… the overview shows them (${firstRender} ms)`);
  const sample = () => page.evaluate(() => ({ heap: performance.memory?.usedJSHeapSize ?? 0, nodes: document.getElementsByTagName("*").length }));
  const before = await sample();
  for (let k = 0; k < FLIPPERS; k++) {
    const t = Date.now();
    await call("POST", `/api/agents/${flipper.id}/instances`, {});
    console.error(`… flipper ${k + 1} started in ${Date.now() - t} ms`);
  }
  await page.evaluate(() => {
    window.latencies = [];
    window.events = 0;
    const pending = new Map();
    const source = new EventSource("/api/events?types=instance.status");
    source.addEventListener("instance.status", (e) => {
      const d = JSON.parse(e.data);
      window.events += 1;
      pending.set(d.instance_id, { status: d.status, at: performance.now() });
    });
    new MutationObserver(() => {
      const now = performance.now();
      for (const [id, want] of pending) {
        const shown = document.querySelector(`li[data-instance="${id}"] .badge`)?.dataset.status;
        if (shown === want.status) { window.latencies.push(now - want.at); pending.delete(id); }
      }
    }).observe(document.getElementById("page"), { childList: true, subtree: true });
  });
  const until = Date.now() + MINUTES * 60_000;
  while (Date.now() < until) await new Promise((r) => setTimeout(r, 5000));
  const { latencies, events } = await page.evaluate(() => ({ latencies: window.latencies, events: window.events }));
  const after = await sample();
  const mib = (b) => (b / 1048576).toFixed(1);
  console.log(`fleet: ${INSTANCES} instances (${FLIPPERS} changing status), ${MINUTES} min`);
  console.log(`  overview showing all of them after loading: ${firstRender} ms`);
  console.log(`  instance.status events: ${events} (${(events / (MINUTES * 60)).toFixed(0)} per second)`);
  console.log(`  event → status on screen, p50 / p99 / max: ${pct(latencies, 50).toFixed(1)} / ${pct(latencies, 99).toFixed(1)} / ${latencies.reduce((a, b) => Math.max(a, b), 0).toFixed(1)} ms (${latencies.length} seen)`);
  console.log(`  JS heap: ${mib(before.heap)} MiB before, ${mib(after.heap)} MiB after; DOM elements: ${before.nodes} → ${after.nodes}`);
  await browser.close();
} finally {
  child.kill("SIGTERM");
}
