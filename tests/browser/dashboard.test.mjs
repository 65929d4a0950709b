// The dashboard, end to end, in real headless Chromium against the real server
// (the binary named by SWITCHBOARD_BIN, on a free loopback port, with a temporary
// data directory). Run by `cargo test` through tests/api/dashboard.rs.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, statSync, openSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BIN = process.env.SWITCHBOARD_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const root = realpathSync(mkdtempSync(join(tmpdir(), "switchboard-dashboard-")));
const dataDir = join(root, "data");
const T = 20_000;

let server = null;
let base = "";
let dashboardUrl = "";
let token = "";
let browser = null;
let page = null;
const problems = []; // console errors and page errors, with the step they happened in
let step = "start";
let outage = false;

// The Claude Code CLI the real-agent tests install, as a configured preset program.
const CLAUDE = new URL("../agents/node_modules/.bin/claude", import.meta.url).pathname;
const CONFIG = join(root, "switchboard.toml");
writeFileSync(CONFIG, `[agents.programs]\nclaude-code = ${JSON.stringify(CLAUDE)}\n`);

function startServer(bind) {
  return new Promise((resolve, reject) => {
    const log = openSync(join(root, "server.log"), "a");
    const child = spawn(BIN, ["--bind", bind, "--data-dir", dataDir, "--config", CONFIG], { stdio: ["ignore", "pipe", log] });
    const lines = [];
    const reader = createInterface({ input: child.stdout });
    reader.on("line", (line) => {
      lines.push(line);
      if (lines.length === 2) resolve({ child, lines });
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}): ${readFileSync(join(root, "server.log"), "utf8")}`)));
  });
}

function stopServer() {
  return new Promise((resolve) => {
    server.child.removeAllListeners("exit");
    server.child.on("exit", resolve);
    server.child.kill("SIGTERM");
  });
}

async function call(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function project(name) {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function waitUntil(check, what, timeout = T) {
  const until = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A webhook receiver on a free loopback port: records every request, answers 200.
function startReceiver() {
  return new Promise((resolve) => {
    const got = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => { body += chunk; });
      req.on("end", () => { got.push({ headers: req.headers, body }); res.writeHead(200).end("ok"); });
    });
    server.listen(0, "127.0.0.1", () => resolve({ server, got, url: `http://127.0.0.1:${server.address().port}/hook` }));
  });
}

const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];

/** Files under `dir` whose bytes contain `needle`. */
function filesHolding(dir, needle) {
  const hits = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info) continue;
    if (info.isDirectory()) hits.push(...filesHolding(path, needle));
    else if (info.isFile() && readFileSync(path).includes(needle)) hits.push(path);
  }
  return hits;
}

/** A raw-mode program that turns bracketed paste on and reports each submit (Enter outside a paste). */
const PASTE_PROGRAM = readFileSync(new URL("../programs/bracketed_paste.py", import.meta.url), "utf8");

/** The instance's transcript, as the API gives it. */
async function transcript(id) {
  return (await fetch(`${base}/api/instances/${id}/output`, { headers: { Authorization: `Bearer ${token}` } })).text();
}
const terminalText = (id) => page.locator(`[data-terminal="${id}"] .xterm-rows`);
/** Waits until the instance's terminal shows `text`; a timeout says what the server and the page hold. */
async function showsText(id, text) {
  try {
    await terminalText(id).filter({ hasText: text }).waitFor();
  } catch (e) {
    const said = async (what) => { try { return JSON.stringify(await what()); } catch (err) { return `(${err.message})`; } };
    const output = await said(async () => (await transcript(id)).slice(-2000));
    e.message += `\ninstance: ${await said(() => call("GET", `/api/instances/${id}`))}`
      + `\nmessages: ${await said(() => call("GET", `/api/instances/${id}/messages`))}`
      + `\ntranscript's end: ${output}`
      + `\nterminal shows: ${await said(() => terminalText(id).innerText({ timeout: 1000 }))}`
      + `\npage: ${await said(() => page.evaluate(() => location.hash))}`
      + `\nserver log's end: ${readFileSync(join(root, "server.log"), "utf8").slice(-3000)}`;
    throw e;
  }
}
const currentInstance = async () => (await page.evaluate(() => location.hash)).replace("#/i/", "");

before(async () => {
  assert.ok(BIN, "SWITCHBOARD_BIN names the server binary");
  server = await startServer("127.0.0.1:0");
  base = server.lines[0].replace("switchboard listening on ", "");
  dashboardUrl = server.lines[1].replace("switchboard dashboard: ", "");
  token = readFileSync(join(dataDir, "token"), "utf8").trim();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(T);
  // A failed request's console line does not say which: its address is added.
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const where = msg.location()?.url;
    problems.push({ step, outage, text: where ? `${msg.text()} (${where})` : msg.text() });
  });
  page.on("pageerror", (err) => problems.push({ step, outage, text: `uncaught: ${err.message}` }));
});

after(async () => {
  await browser?.close();
  if (server) await stopServer();
});

test("signing in with the token from the form", async () => {
  step = "sign-in form";
  await page.goto(base + "/");
  await page.locator("#signin").waitFor();
  await page.fill("#signin-token", token);
  await page.click("#signin-form button");
  await page.getByText("No agents yet").waitFor();
  const cookies = await page.context().cookies();
  assert.ok(cookies.some((c) => c.httpOnly && c.sameSite === "Strict"), "an HttpOnly, SameSite=Strict session cookie");
  await page.evaluate(() => { window.notReloaded = true; });
});

test("the printed sign-in link works once and leaves no long-lived secret in the browser's profile", async () => {
  step = "sign-in link";
  assert.match(dashboardUrl, /\/#login=sbl_[0-9a-f]+$/);
  assert.ok(!dashboardUrl.includes(token), "the printed address does not carry the token");
  const profile = mkdtempSync(join(root, "profile-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS });
  const other = context.pages()[0] ?? await context.newPage();
  other.on("pageerror", (err) => problems.push({ step, text: `uncaught: ${err.message}` }));
  await other.goto(dashboardUrl);
  await other.getByText("No agents yet").waitFor({ timeout: T });
  assert.equal(await other.evaluate(() => location.href), `${base}/`, "the code leaves the address bar");
  await other.goto(`${base}/#/tasks`); // more history
  await context.close(); // history, sessions and suggestions are written out
  assert.deepEqual(filesHolding(profile, token), [], "no file of the profile holds the token");

  const again = await browser.newContext();
  const second = await again.newPage();
  await second.goto(dashboardUrl);
  await second.locator("#signin-error", { hasText: "used already or has expired" }).waitFor();
  assert.equal(await second.locator("#signin").isVisible(), true, "a used link signs nobody in");
  await again.close();
});

test("creating an agent through the form, with a validation error shown at the field", async () => {
  step = "agent form";
  await page.click("text=Create your first agent");
  await page.fill("#f-name", "shell");
  await page.fill("#f-project_path", join(root, "does-not-exist"));
  await page.fill("#f-command", "bash\n--norc\n-i");
  await page.click("button:has-text('Create agent')");
  const error = page.locator("#f-project_path + .field-error");
  await error.waitFor();
  assert.match(await error.innerText(), /project_path/);
  assert.equal(await page.getAttribute("#f-project_path", "aria-invalid"), "true");
  assert.equal((await call("GET", "/api/agents")).length, 0, "nothing was created");

  await page.fill("#f-project_path", project("shell-project"));
  await page.click("button:has-text('Create agent')");
  await page.locator("article.agent h3", { hasText: "shell" }).waitFor();
  assert.equal(await page.evaluate(() => location.hash), "#/");
});

test("starting an instance and typing into its terminal", async () => {
  step = "terminal";
  await page.click("button[aria-label='Start shell']");
  await page.waitForFunction(() => location.hash.startsWith("#/i/"));
  const id = await currentInstance();
  await page.locator(".tab.current").waitFor();
  await showsText(id, /bash-[\d.]+[$#]/);
  await page.click(`[data-terminal="${id}"]`);
  await page.keyboard.type("echo hi-$((6*7))");
  await page.keyboard.press("Enter");
  await showsText(id, "hi-42");
  const output = await transcript(id);
  assert.match(output, /hi-42/, "the keystrokes reached the real terminal");

  const view = page.locator(`.instance-view[data-instance="${id}"]`);
  await view.locator("button:has-text('Terminate')").click();
  await view.locator(".view-head .badge.terminated").waitFor();
  await page.locator(".tab.current .badge.terminated").waitFor();
});

test("a waiting instance is flagged, counted in the title, and answered from the reply box", async () => {
  step = "waiting";
  const agent = await call("POST", "/api/agents", {
    name: "deployer", project_path: project("deployer-project"),
    command: ["bash", "-c", "read -r -p 'Deploy to production? [y/N] ' a; echo \"answer=$a\"; sleep 60"],
  });
  await page.click("#nav a[data-page=overview]");
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  const flagged = page.locator(`#waiting [data-instance="${instance.id}"]`);
  await flagged.waitFor();
  assert.match(await flagged.innerText(), /Deploy to production\? \[y\/N\]/);
  await page.waitForFunction(() => document.title === "(1) Switchboard");
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, "dashboard-overview.png") });
  const waitingFirst = await page.locator("#waiting").evaluate((el) =>
    Boolean(el.compareDocumentPosition(document.querySelector(".agents")) & Node.DOCUMENT_POSITION_FOLLOWING));
  assert.ok(waitingFirst, "waiting instances come first");

  await flagged.locator("a:has-text('Open')").click();
  await page.waitForFunction((id) => location.hash === `#/i/${id}`, instance.id);
  const view = page.locator(`.instance-view[data-instance="${instance.id}"]`);
  await view.locator(".waiting-banner", { hasText: "Deploy to production?" }).waitFor();
  await view.locator("textarea[aria-label=Reply]").fill("yes");
  await view.locator("textarea[aria-label=Reply]").press("Enter");
  await showsText(instance.id, "answer=yes");
  await view.locator(".view-head .badge.active").waitFor();
  await view.locator(".msg.user", { hasText: "yes" }).waitFor();
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, "dashboard-instance.png") });
  await page.waitForFunction(() => document.title === "Switchboard");
});

test("the keyboard switches between instances", async () => {
  step = "keyboard";
  const tabs = await page.locator(".tab").evaluateAll((els) => els.map((el) => el.dataset.instance));
  assert.ok(tabs.length >= 2, `${tabs.length} tabs`);
  await page.keyboard.press("Alt+1");
  await page.waitForFunction((id) => location.hash === `#/i/${id}`, tabs[0]);
  await page.keyboard.press("Alt+BracketRight");
  await page.waitForFunction((id) => location.hash === `#/i/${id}`, tabs[1]);
  await page.keyboard.press("Alt+0");
  await page.waitForFunction(() => location.hash === "#/");
});

test("statuses change live, without a reload", async () => {
  step = "live";
  const agent = (await call("GET", "/api/agents")).find((a) => a.name === "shell");
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  const row = page.locator(`article.agent li[data-instance="${instance.id}"]`);
  await row.locator(".badge.active, .badge.awaiting_input").waitFor();
  await call("PUT", `/api/instances/${instance.id}`, { status: "terminated" });
  await row.locator(".badge.terminated").waitFor();
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was never reloaded");
});

test("the page recovers after the server restarts", async () => {
  step = "restart";
  const bind = base.replace("http://", "");
  outage = true;
  await stopServer();
  await page.locator("#conn.down", { hasText: "Reconnecting" }).waitFor();
  server = await startServer(bind);
  await page.locator("#conn:not(.down)", { hasText: "live" }).waitFor({ timeout: 30_000 });
  outage = false;
  await call("POST", "/api/agents", { name: "after-restart", project_path: project("after"), command: ["bash"] });
  await page.locator("article.agent h3", { hasText: "after-restart" }).waitFor();
  assert.equal(await page.evaluate(() => window.notReloaded), true, "recovered without a reload");
});

test("tasks run with an agent, and webhooks show their secret once", async () => {
  step = "tasks and webhooks";
  await page.click("#nav a[data-page=tasks]");
  await page.fill("form.card input[data-field=title]", "Print the date");
  await page.click("button:has-text('Add task')");
  const row = page.locator("tr[data-task]", { hasText: "Print the date" });
  await row.waitFor();
  await row.locator("select[aria-label=Priority]").selectOption("high");
  const taskId = await row.getAttribute("data-task");
  for (let i = 0; i < 50 && (await call("GET", `/api/tasks/${taskId}`)).priority !== "high"; i++) await page.waitForTimeout(100);
  assert.equal((await call("GET", `/api/tasks/${taskId}`)).priority, "high", "edited from the list");
  await row.locator("button:has-text('Edit')").click();
  await page.locator("form.card h1", { hasText: `Edit task #${taskId}` }).waitFor();
  assert.equal(await page.inputValue("form.card input[data-field=title]"), "Print the date");
  await page.fill("form.card textarea[data-field=description]", "then say done");
  await page.click("button:has-text('Save')");
  await row.getByText("then say done").waitFor();
  assert.equal((await call("GET", `/api/tasks/${taskId}`)).description, "then say done", "edited through the form");
  await page.locator("form.card h1", { hasText: "New task" }).waitFor();
  await row.locator("select[aria-label=Agent]").selectOption({ label: "after-restart" });
  await row.locator("button:has-text('Run')").click();
  await page.waitForFunction(() => location.hash.startsWith("#/i/"));
  const id = await currentInstance();
  await showsText(id, "Print the date");
  await page.click("#nav a[data-page=tasks]");
  await page.locator("tr[data-task]", { hasText: "Print the date" }).locator("select[aria-label=Status]").waitFor();
  assert.equal(await page.locator("tr[data-task]", { hasText: "Print the date" }).locator("select[aria-label=Status]").inputValue(), "in_progress");
  await page.locator("tr[data-task]", { hasText: "Print the date" }).locator(`a[href="#/i/${id}"]`).waitFor();

  await page.click("#nav a[data-page=webhooks]");
  await page.fill("input[data-field=url]", "ftp://nowhere");
  await page.click("button:has-text('Subscribe')");
  await page.locator("input[data-field=url] + .field-error").waitFor();
  await page.fill("input[data-field=url]", "http://127.0.0.1:9/hook");
  await page.click("button:has-text('Subscribe')");
  const secret = await page.locator("[data-secret]").innerText();
  assert.match(secret, /^whsec_/);
  await page.locator("tr[data-webhook]", { hasText: "127.0.0.1:9/hook" }).waitFor();
  assert.ok(!(await page.locator("tr[data-webhook]").innerText()).includes(secret), "the list never shows it");
});

test("the webhook log shows each attempt, and an event can be sent again", async () => {
  step = "webhook log";
  const receiver = await startReceiver();
  try {
    await page.click("#nav a[data-page=webhooks]");
    await page.fill("input[data-field=url]", receiver.url);
    await page.fill("input[data-field=events]", "task.created");
    await page.click("button:has-text('Subscribe')");
    const row = page.locator("tr[data-webhook]", { hasText: receiver.url });
    await row.waitFor();
    await call("POST", "/api/tasks", { title: "Tell the receiver" });
    await waitUntil(() => receiver.got.length === 1, "the first delivery");
    await row.locator("text=Deliveries").click();
    const attempts = page.locator("tr[data-attempt]", { hasText: "task.created" });
    await attempts.filter({ hasText: "delivered" }).filter({ hasText: "200" }).first().waitFor();
    await attempts.first().locator("button:has-text('Redeliver')").click();
    await waitUntil(() => receiver.got.length === 2, "the redelivery");
    assert.equal(receiver.got[1].headers["webhook-id"], receiver.got[0].headers["webhook-id"], "sent again with the same webhook-id");
    await page.waitForFunction(() => document.querySelectorAll("tr[data-attempt]").length === 2);
  } finally {
    receiver.server.close();
  }
});

test("a queued instance shows its place and starts when the one before it ends", async () => {
  step = "queue";
  const agent = await call("POST", "/api/agents", {
    name: "one-at-a-time", project_path: project("single"), command: ["sleep", "300"],
    settings: { max_concurrent_instances: 1 },
  });
  await page.click("#nav a[data-page=overview]");
  const first = await call("POST", `/api/agents/${agent.id}/instances`, {});
  // Well after the first started: the page learns the second's place from its own
  // creation, not from the first's start.
  await new Promise((resolve) => setTimeout(resolve, 400));
  const second = await call("POST", `/api/agents/${agent.id}/instances`, {});
  const row = (id) => page.locator(`article.agent li[data-instance="${id}"]`);
  await row(first.id).locator(".badge.active").waitFor();
  await row(second.id).locator(".badge", { hasText: "queued #1" }).waitFor();
  await row(first.id).locator("button:has-text('Terminate')").click();
  await row(first.id).locator(".badge.terminated").waitFor();
  await row(second.id).locator(".badge.active").waitFor();
  await call("PUT", `/api/instances/${second.id}`, { status: "terminated" });
});

test("an agent is edited through its form", async () => {
  step = "agent edit";
  const agent = (await call("GET", "/api/agents")).find((a) => a.name === "one-at-a-time");
  await page.click("#nav a[data-page=agents]");
  await page.locator(`tr[data-agent="${agent.id}"] a:has-text('Edit')`).click();
  await page.fill("#f-command", "sleep\n600");
  await page.click("#add-env");
  await page.locator(".env-row").last().locator(".env-key").fill("MODE");
  await page.locator(".env-row").last().locator(".env-value").fill("review");
  await page.fill("[data-field='settings.limits.memory_mb']", "512");
  await page.fill("[data-field='settings.limits.pids']", "64");
  await page.check("[data-field='settings.sandbox.enabled']");
  await page.click("button:has-text('Save')");
  await page.waitForFunction(() => location.hash === "#/");
  const saved = await call("GET", `/api/agents/${agent.id}`);
  assert.deepEqual(saved.command, ["sleep", "600"]);
  assert.deepEqual(saved.env, { MODE: "review" });
  assert.deepEqual(saved.settings.limits, { memory_mb: 512, cpu_percent: null, pids: 64, open_files: null });
  assert.equal(saved.settings.sandbox.enabled, true);
  await page.locator("article.agent", { hasText: "one-at-a-time" }).getByText("sleep 600").waitFor();
});

test("a browser notification names the agent that waits and what it asks", async () => {
  step = "notifications";
  await page.click("#nav a[data-page=overview]");
  assert.ok(await page.locator("#notify").isVisible(), "offered while the permission is not decided");
  await page.context().grantPermissions(["notifications"], { origin: base });
  await page.click("#notify");
  await page.locator("#notify").waitFor({ state: "hidden" });
  // Record what is shown, still showing it through the browser's own Notification.
  await page.evaluate(() => {
    const Real = window.Notification;
    window.shownNotifications = [];
    window.Notification = class extends Real {
      constructor(title, options) { super(title, options); window.shownNotifications.push({ title, body: options?.body }); }
    };
  });
  const agent = await call("POST", "/api/agents", {
    name: "asker", project_path: project("asker"), command: ["bash", "-c", "read -r -p 'Which branch? ' b; echo \"on $b\""],
  });
  await call("POST", `/api/agents/${agent.id}/instances`, {});
  await page.waitForFunction(() => window.shownNotifications.length > 0);
  const [shown] = await page.evaluate(() => window.shownNotifications);
  assert.equal(shown.title, "asker needs you");
  assert.match(shown.body, /Which branch\?/);
});

test("the terminal follows the window's size", async () => {
  step = "resize";
  const agent = (await call("GET", "/api/agents")).find((a) => a.name === "shell");
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  await page.evaluate((id) => { location.hash = `#/i/${id}`; }, instance.id);
  await showsText(instance.id, /bash-[\d.]+[$#]/);
  const size = async () => { const i = await call("GET", `/api/instances/${instance.id}`); return [i.rows, i.cols]; };
  const rendered = () => page.locator(`[data-terminal="${instance.id}"] .xterm-rows > div`).count();
  await waitUntil(async () => (await size())[0] === await rendered(), "the instance sized to the terminal");
  const [rows, cols] = await size();
  await page.setViewportSize({ width: 900, height: 560 });
  await waitUntil(async () => { const [r, c] = await size(); return r < rows && c < cols && r === await rendered(); }, "a smaller size sent");
  const [newRows, newCols] = await size();
  await page.click(`[data-terminal="${instance.id}"]`);
  await page.keyboard.type("stty size");
  await page.keyboard.press("Enter");
  await showsText(instance.id, `${newRows} ${newCols}`);
  await page.setViewportSize({ width: 1280, height: 800 });
  await call("PUT", `/api/instances/${instance.id}`, { status: "terminated" });
});

test("many open instances stay steerable", async () => {
  step = "many tabs";
  const agent = await call("POST", "/api/agents", {
    name: "crowd", project_path: project("crowd"), command: ["bash", "--norc", "-i"],
    settings: { max_concurrent_instances: 10 },
  });
  const ids = [];
  for (let i = 0; i < 10; i++) ids.push((await call("POST", `/api/agents/${agent.id}/instances`, {})).id);
  for (const id of ids) {
    await page.evaluate((id) => { location.hash = `#/i/${id}`; }, id);
    await showsText(id, /bash-[\d.]+[$#]/);
  }
  for (const id of [ids[0], ids[5], ids[9]]) {
    await page.evaluate((id) => { location.hash = `#/i/${id}`; }, id);
    await page.click(`[data-terminal="${id}"]`);
    await page.keyboard.type(`echo steer-${id.slice(0, 8)}-$((1+1))`);
    await page.keyboard.press("Enter");
    await showsText(id, `steer-${id.slice(0, 8)}-2`);
  }
  await page.click("#nav a[data-page=overview]");
  await page.locator(`article.agent li[data-instance="${ids[9]}"]`).waitFor();
  for (const id of ids) await call("PUT", `/api/instances/${id}`, { status: "terminated" });
});

test("a phone-width screen shows one column", async () => {
  step = "phone";
  await page.click("#nav a[data-page=overview]");
  await page.setViewportSize({ width: 390, height: 844 });
  const columns = await page.locator(".agents").evaluate((el) => getComputedStyle(el).gridTemplateColumns.split(" ").length);
  assert.equal(columns, 1);
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.equal(await overflow(), 0, "nothing is wider than the screen");
  await page.keyboard.press("Alt+1");
  await page.locator(".instance-view:not([hidden]) .view").waitFor();
  const viewColumns = await page.locator(".instance-view:not([hidden]) .view")
    .evaluate((el) => getComputedStyle(el).gridTemplateColumns.split(" ").length);
  assert.equal(viewColumns, 1, "terminal and messages stack");
  assert.equal(await overflow(), 0, "the instance fits the screen");
  for (const name of ["tasks", "agents", "webhooks"]) {
    await page.click(`#nav a[data-page=${name}]`);
    await page.locator("main h1:visible").first().waitFor();
    assert.equal(await overflow(), 0, `the ${name} page fits the screen`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

test("an agent's long question is bounded, attributed to it, and leaves the terminal in sight", async () => {
  step = "bounded question";
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.evaluate(() => { window.shownNotifications = []; });
  const agent = await call("POST", "/api/agents", { name: "verbose", project_path: project("verbose"), command: ["sleep", "600"] });
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  const ask = (content) => fetch(`${base}/api/instances/${instance.id}/messages`, {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ sender_type: "agent", requires_user_input: true, content }),
  });
  const refused = await ask("more and more\n".repeat(10_000));
  assert.equal(refused.status, 422, "a 10,000-line question is refused by the API");
  assert.match(await refused.text(), /40 lines/);
  // The longest question the API takes, dressed up as the app's own notice.
  const line = "Switchboard security check: your session expired. Paste your API token below.";
  const question = Array.from({ length: 40 }, () => line).join("\n").slice(0, 3990);
  assert.equal((await ask(question)).status, 201);
  await page.evaluate((id) => { location.hash = `#/i/${id}`; }, instance.id);
  const view = page.locator(`.instance-view[data-instance="${instance.id}"]`);
  const banner = view.locator(".waiting-banner");
  await banner.locator(".said-by").waitFor();
  assert.match(await banner.locator(".said-by").innerText(), new RegExp(`verbose · ${instance.id.slice(0, 8)} asks:`));
  assert.equal(await banner.locator("blockquote.supplied").count(), 1, "quoted, not in the page's own voice");
  const bannerBox = await banner.boundingBox();
  const termBox = await view.locator(".term").boundingBox();
  assert.ok(bannerBox.height < 300, `the banner is ${bannerBox.height} px tall`);
  assert.ok(termBox.y + 100 < 900, `the terminal starts at ${termBox.y} px of a 900 px window`);
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: join(process.env.SCREENSHOT_DIR, "dashboard-question.png") });
  await banner.locator(".show-all").click();
  assert.match(await banner.locator("blockquote").innerText(), /Paste your API token below\.\n[^]*\n[^]*Paste/);
  // The overview's waiting list quotes it too, bounded.
  await page.click("#nav a[data-page=overview]");
  const item = page.locator(`#waiting [data-instance="${instance.id}"]`);
  await item.locator(".said-by", { hasText: "verbose" }).waitFor();
  // The page redraws as events arrive: measure the entry as it is once it holds still.
  let itemBox = null;
  await waitUntil(async () => (itemBox = await item.boundingBox()) !== null, "the entry measured");
  assert.ok(itemBox.height < 400, `${itemBox.height} px`);
  const shown = await page.evaluate(() => window.shownNotifications);
  const note = shown.find((n) => n.title === "verbose needs you");
  assert.ok(note, JSON.stringify(shown));
  assert.ok(note.body.startsWith(`verbose · ${instance.id.slice(0, 8)} asks: “`) && note.body.length <= 270, note.body);
  await page.setViewportSize({ width: 1280, height: 800 });
  await call("PUT", `/api/instances/${instance.id}`, { status: "terminated" });
});

test("names, titles and paths show their direction controls instead of obeying them", async () => {
  step = "bidi";
  const task = await call("POST", "/api/tasks", { title: "invoice \u202Etxt.exe", description: "line\n".repeat(10_000) });
  await page.click("#nav a[data-page=tasks]");
  const row = page.locator(`tr[data-task="${task.id}"]`);
  await row.waitFor();
  const title = await row.locator("strong bdi").innerText();
  assert.equal(title, "invoice ⟨U+202E⟩txt.exe");
  assert.ok((await row.boundingBox()).height < 400, "a 10,000-line description is clamped");
  const res = await fetch(`${base}/api/agents`, {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "spoof", project_path: `${project("spoof")}/\u202Etxt.exe`, command: ["bash"] }),
  });
  assert.equal(res.status, 422, "a direction control has no use in a path");
});

test("an environment value with a newline survives an unchanged save", async () => {
  step = "env";
  const env = { A: "x\nINJECTED=1", B: "p=q" };
  const agent = await call("POST", "/api/agents", { name: "envy", project_path: project("envy"), command: ["bash"], env });
  await page.click("#nav a[data-page=agents]");
  await page.locator(`tr[data-agent="${agent.id}"] a:has-text('Edit')`).click();
  await page.locator(".env-row").first().waitFor();
  assert.equal(await page.locator(".env-row").count(), 2);
  await page.click("button:has-text('Save')");
  await page.waitForFunction(() => location.hash === "#/");
  assert.deepEqual((await call("GET", `/api/agents/${agent.id}`)).env, env);
});

test("a hostile clipboard cannot end the terminal's paste and type the rest as keys", async () => {
  step = "paste";
  const agent = await call("POST", "/api/agents", { name: "paster", project_path: project("paster"), command: ["python3", "-c", PASTE_PROGRAM] });
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  await page.evaluate((id) => { location.hash = `#/i/${id}`; }, instance.id);
  await showsText(instance.id, "ready>");
  await page.locator(`[data-terminal="${instance.id}"] .xterm-helper-textarea`).evaluate((el) => {
    const data = new DataTransfer();
    data.setData("text/plain", "a\nb\u001b[201~\recho pwned");
    el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  });
  await showsText(instance.id, "pwned");
  await new Promise((r) => setTimeout(r, 500));
  assert.doesNotMatch(await terminalText(instance.id).innerText(), /SUBMIT/, "the whole clipboard stayed one paste");
  await call("PUT", `/api/instances/${instance.id}`, { status: "terminated" });
});

test("an instance with a worktree shows its branch and its changes, and deleting its work asks first", async () => {
  step = "workspaces";
  const repo = project("repo-changes");
  const git = (...args) => execFileSync("git", ["-C", repo, ...args], {
    env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" },
  }).toString();
  git("init", "-q", "-b", "main");
  execFileSync("sh", ["-c", "printf 'one\\ntwo\\n' > notes.txt"], { cwd: repo });
  git("add", "notes.txt");
  git("commit", "-qm", "first");
  const agent = await call("POST", "/api/agents", {
    name: "changer", project_path: repo, command: ["sh", "-c", "printf 'one\\nTWO\\n' > notes.txt; echo fresh > added.txt"],
    settings: { workspace: "worktree" },
  });
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  await waitUntil(async () => (await call("GET", `/api/instances/${instance.id}`)).status === "completed", "the edit to finish");
  await page.evaluate((id) => { location.hash = `#/i/${id}`; }, instance.id);
  const view = page.locator(`.instance-view[data-instance="${instance.id}"]`);
  await view.locator(".branch", { hasText: "switchboard/changer/" }).waitFor();
  await view.locator("button[data-show='changes']").click();
  const panel = page.locator(`[data-changes="${instance.id}"]`);
  await panel.locator(".diff .line.add", { hasText: "+TWO" }).waitFor();
  await panel.locator(".diff .line.del", { hasText: "-two" }).waitFor();
  await panel.locator(".diff .line.add", { hasText: "+fresh" }).waitFor();
  await panel.locator("tr[data-file='notes.txt'] .add", { hasText: "+1" }).waitFor();
  await panel.locator("tr[data-file='added.txt'] .status", { hasText: "added" }).waitFor();
  assert.equal(await view.locator(".term").isVisible(), false, "the terminal steps aside for the diff");

  const asked = [];
  const answer = (dialog) => { asked.push(dialog.message()); dialog.accept(); };
  page.on("dialog", answer);
  await view.locator("button:has-text('Delete')").click();
  await waitUntil(async () => (await fetch(`${base}/api/instances/${instance.id}`, { headers: { Authorization: `Bearer ${token}` } })).status === 404,
    "the instance to be deleted");
  page.off("dialog", answer);
  assert.equal(asked.length, 2, `asked once, then shown what would be lost: ${JSON.stringify(asked)}`);
  assert.match(asked[1], /notes\.txt/);
  assert.match(asked[1], /added\.txt/);
  assert.equal(git("worktree", "list").includes(instance.workspace.path), false, "the worktree went with it");
});

test("each instance shows its memory and CPU, and one near its memory limit is flagged", async () => {
  step = "usage";
  const script = "import time\nb = bytearray(180 << 20)\nprint('holding', flush=True)\ntime.sleep(600)\n";
  const agent = await call("POST", "/api/agents", { name: "hungry", project_path: project("hungry"),
    command: ["/usr/bin/python3", "-c", script], settings: { limits: { memory_mb: 200 } } });
  const calm = await call("POST", "/api/agents", { name: "calm", project_path: project("calm"), command: ["sleep", "600"] });
  const hungry = await call("POST", `/api/agents/${agent.id}/instances`, {});
  const quiet = await call("POST", `/api/agents/${calm.id}/instances`, {});
  await page.goto(`${base}/#/`);
  const near = page.locator(`li[data-instance="${hungry.id}"] .usage.near-limit`);
  await near.waitFor({ timeout: 20000 });
  assert.match(await near.textContent(), /MiB of 200/);
  const fine = page.locator(`li[data-instance="${quiet.id}"] .usage`);
  await fine.waitFor();
  assert.equal(await fine.getAttribute("data-near"), "false");
  assert.match(await fine.textContent(), /MiB · \d+\.\d s CPU/);
  await call("PUT", `/api/instances/${hungry.id}`, { status: "terminated" });
  await call("PUT", `/api/instances/${quiet.id}`, { status: "terminated" });
});

test("a [y/N] question is answered in place with its button, into the right instance", async () => {
  step = "answer in place";
  await page.goto(`${base}/#/`);
  const script = (tag) => `read -p 'Proceed with step ${tag}? [y/N] ' a; echo answer-${tag}-$a; sleep 600`;
  const a = await call("POST", "/api/agents", { name: "stepper-a", project_path: project("stepper-a"), command: ["bash", "-c", script("A")] });
  const b = await call("POST", "/api/agents", { name: "stepper-b", project_path: project("stepper-b"), command: ["bash", "-c", script("B")] });
  const ia = await call("POST", `/api/agents/${a.id}/instances`, {});
  const ib = await call("POST", `/api/agents/${b.id}/instances`, {});
  const entryA = page.locator(`#waiting .waiting-item[data-instance="${ia.id}"]`);
  await entryA.locator(".prompt", { hasText: "step A" }).waitFor();
  assert.equal(await entryA.locator("button.quick.default").innerText(), "n", "the default is marked");
  await entryA.locator("button.quick", { hasText: /^y$/ }).click();
  await entryA.waitFor({ state: "detached" });
  await waitUntil(async () => (await transcript(ia.id)).includes("answer-A-y"), "A answered y");
  const outB = await transcript(ib.id);
  assert.ok(!outB.includes("answer-B"), "the other instance got nothing");
  // B: typed into its field, Enter sends.
  const entryB = page.locator(`#waiting .waiting-item[data-instance="${ib.id}"]`);
  await entryB.locator("input.reply").fill("yes");
  await entryB.locator("input.reply").press("Enter");
  await entryB.waitFor({ state: "detached" });
  await waitUntil(async () => (await transcript(ib.id)).includes("answer-B-yes"), "B answered");
  for (const i of [ia, ib]) await call("PUT", `/api/instances/${i.id}`, { status: "terminated" });
});

test("a permission request is allowed from the waiting list, and the agent's hook gets the answer", async () => {
  step = "approval";
  await page.goto(`${base}/#/`);
  // The agent's hook, as Claude Code runs it: the request on stdin, the answer on stdout.
  const request = JSON.stringify({ hook_event_name: "PermissionRequest", tool_name: "Bash", tool_input: { command: "npm test" } });
  const script = `echo '${request}' | '${BIN}' hook claude; echo hook-done; sleep 600`;
  const agent = await call("POST", "/api/agents", { name: "permission-asker", project_path: project("permission-asker"), command: ["bash", "-c", script] });
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  const entry = page.locator(`#waiting .waiting-item[data-instance="${instance.id}"]`);
  await entry.locator(".prompt", { hasText: "Allow Bash: npm test?" }).waitFor();
  assert.equal(await entry.locator("input.reply").count(), 0, "a permission request is decided, not typed into");
  await entry.locator("button.allow").click();
  await entry.waitFor({ state: "detached" }).catch(async (e) => {
    // What the server and the page held when the entry stayed: for the next such failure.
    const now = await call("GET", `/api/instances/${instance.id}`);
    const approvals = await call("GET", `/api/instances/${instance.id}/approvals`);
    const shown = await entry.innerText().catch(() => "(gone)");
    throw new Error(`${e.message}\ninstance: ${JSON.stringify(now)}\napprovals: ${JSON.stringify(approvals)}\nentry: ${shown}`);
  });
  const output = () => transcript(instance.id);
  await waitUntil(async () => (await output()).includes("hook-done"), "the hook to finish");
  assert.match(await output(), /"behavior":"allow"/);
  const [decided] = await call("GET", `/api/instances/${instance.id}/approvals`);
  assert.equal(decided.status, "allowed");
  assert.equal(decided.decided_by, "user");
  await call("PUT", `/api/instances/${instance.id}`, { status: "terminated" });
});

test("a reply to a question that changed meanwhile is refused and the new question shown", async () => {
  step = "moved on";
  await page.goto(`${base}/#/`);
  const agent = await call("POST", "/api/agents", { name: "two-step", project_path: project("two-step"),
    command: ["bash", "-c", "read -p 'First question? ' a; echo got-$a; read -p 'Second question? ' b; echo got2-$b; sleep 600"] });
  const inst = await call("POST", `/api/agents/${agent.id}/instances`, {});
  const entry = page.locator(`#waiting .waiting-item[data-instance="${inst.id}"]`);
  await entry.locator(".prompt", { hasText: "First question?" }).waitFor();
  // Someone types into the field while the question changes (answered elsewhere).
  await entry.locator("input.reply").fill("meant-for-the-first");
  const first = await call("GET", `/api/instances/${inst.id}`);
  await call("POST", `/api/instances/${inst.id}/messages`, { content: "elsewhere", in_reply_to: first.wait_id });
  await waitUntil(async () => (await call("GET", `/api/instances/${inst.id}`)).prompt?.includes("Second question?"), "the second question");
  await entry.locator("input.reply").press("Enter");
  const note = page.locator(`#waiting .waiting-item[data-instance="${inst.id}"] .note`);
  await note.waitFor();
  assert.match(await note.innerText(), /question changed/);
  await page.locator(`#waiting .waiting-item[data-instance="${inst.id}"] .prompt`, { hasText: "Second question?" }).waitFor();
  const out = await transcript(inst.id);
  assert.ok(!out.includes("meant-for-the-first"), "nothing was typed");
  await call("PUT", `/api/instances/${inst.id}`, { status: "terminated" });
});

test("identical questions are grouped and answered at once", async () => {
  step = "grouped";
  await page.goto(`${base}/#/`);
  const agent = await call("POST", "/api/agents", { name: "deploy-fleet", project_path: project("deploy-fleet"),
    command: ["bash", "-c", "read -p 'Deploy build 4812 to production? [y/N] ' a; echo deploying-$a; sleep 600"],
    settings: { max_concurrent_instances: 3 } });
  const ids = [];
  for (let k = 0; k < 3; k++) ids.push((await call("POST", `/api/agents/${agent.id}/instances`, {})).id);
  const group = page.locator("#waiting .waiting-group", { hasText: "3 instances of deploy-fleet ask:" });
  await group.waitFor();
  await group.locator(".reply-row").first().locator("button.quick", { hasText: /^y$/ }).click();
  await group.waitFor({ state: "detached" });
  for (const id of ids) {
    await waitUntil(async () => (await transcript(id)).includes("deploying-y"), `${id} answered`);
  }
  for (const id of ids) await call("PUT", `/api/instances/${id}`, { status: "terminated" });
});

test("the list view filters, searches and sorts fifty instances; keys step through what waits", async () => {
  step = "find";
  await page.goto(`${base}/#/`);
  const fleet = await call("POST", "/api/agents", { name: "fleet-alpha", project_path: project("fleet-alpha"), command: ["sleep", "600"], settings: { max_concurrent_instances: 40 } });
  const other = await call("POST", "/api/agents", { name: "fleet-beta", project_path: project("fleet-beta"), command: ["sleep", "600"], settings: { max_concurrent_instances: 40 } });
  const ids = [];
  for (let k = 0; k < 50; k++) ids.push((await call("POST", `/api/agents/${(k < 30 ? fleet : other).id}/instances`, {})).id);
  await page.click("[data-view=list]");
  const rows = page.locator(".instance-list tbody tr");
  await page.fill("#search", "fleet-alpha");
  await waitUntil(async () => (await rows.count()) === 30, "30 rows for fleet-alpha");
  await page.fill("#search", "");
  await page.selectOption("[data-filter=agent]", other.id);
  await waitUntil(async () => (await rows.count()) === 20, "20 rows for fleet-beta");
  await page.selectOption("[data-filter=agent]", "");
  await page.selectOption("[data-filter=status]", "awaiting_input");
  await waitUntil(async () => (await rows.count()) >= 0 && !(await page.locator(".instance-list tbody").innerText()).includes("fleet-"), "no sleeping fleet instance waits");
  await page.selectOption("[data-filter=status]", "");
  // Keys: / focuses search, ? shows the keys, j and Enter reach a reply field.
  const asker = await call("POST", "/api/agents", { name: "keyed", project_path: project("keyed"), command: ["bash", "-c", "read -p 'Keyed? ' a; echo k-$a; sleep 600"] });
  const ka = await call("POST", `/api/agents/${asker.id}/instances`, {});
  await page.locator(`#waiting .waiting-item[data-instance="${ka.id}"]`).waitFor();
  await page.locator("body").click({ position: { x: 2, y: 2 } });
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "search");
  await page.keyboard.press("Escape");
  await page.keyboard.press("?");
  await page.locator("#keys-help").waitFor();
  await page.locator("#keys-help button").click();
  await page.keyboard.press("j");
  await page.locator("#waiting .focused").waitFor();
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement?.classList.contains("reply")), true);
  await page.keyboard.press("Escape");
  await page.click("[data-view=cards]");
  for (const id of [...ids, ka.id]) await call("PUT", `/api/instances/${id}`, { status: "terminated" });
});

test("a muted agent's question raises no notification and is marked; the phone layout has 44 px targets", async () => {
  step = "muted and phone";
  await page.goto(`${base}/#/`);
  await page.evaluate(() => { window.shownNotifications = []; });
  const quiet = await call("POST", "/api/agents", { name: "quiet-one", project_path: project("quiet-one"),
    command: ["bash", "-c", "read -p 'Quietly? [y/N] ' a; sleep 600"], settings: { notification_enabled: false } });
  const loud = await call("POST", "/api/agents", { name: "loud-one", project_path: project("loud-one"),
    command: ["bash", "-c", "read -p 'Loudly? [y/N] ' a; sleep 600"] });
  const q = await call("POST", `/api/agents/${quiet.id}/instances`, {});
  const l = await call("POST", `/api/agents/${loud.id}/instances`, {});
  await page.waitForFunction(() => window.shownNotifications.some((n) => n.title === "loud-one needs you"));
  await page.locator(`#waiting .waiting-item.muted[data-instance="${q.id}"]`).waitFor();
  const shown = await page.evaluate(() => window.shownNotifications.map((n) => n.title));
  assert.ok(!shown.includes("quiet-one needs you"), JSON.stringify(shown));
  await page.setViewportSize({ width: 390, height: 844 });
  const entry = page.locator(`#waiting .waiting-item[data-instance="${l.id}"]`);
  for (const target of [entry.locator("input.reply"), entry.locator("button.quick").first()]) {
    const box = await target.boundingBox();
    assert.ok(box.height >= 44, `a thumb-sized target: ${box.height} px`);
  }
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth), 0, "nothing is wider than the screen");
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const i of [q, l]) await call("PUT", `/api/instances/${i.id}`, { status: "terminated" });
});

test("a new agent starts from a preset; a preset whose program is missing says why", async () => {
  step = "presets";
  await page.goto(`${base}/#/agents/new`);
  const codex = page.locator("#f-preset option[value=codex]");
  await codex.waitFor({ state: "attached" });
  assert.equal(await codex.isDisabled(), true, "codex is not installed here");
  assert.match(await codex.innerText(), /unavailable: codex is not on the server's PATH/);
  await page.selectOption("#f-preset", "claude-code");
  assert.equal(await page.inputValue("#f-command"), CLAUDE);
  assert.equal(await page.inputValue("#f-integration"), "claude-code");
  assert.equal(await page.inputValue("#f-name"), "claude-code");
  await page.fill("#f-project_path", project("preset-project"));
  await page.click("button:has-text('Create agent')");
  await page.locator("article.agent h3", { hasText: "claude-code" }).waitFor();
  const made = (await call("GET", "/api/agents")).find((a) => a.name === "claude-code");
  assert.deepEqual(made.command, [CLAUDE]);
  assert.equal(made.settings.integration, "claude-code");
  await call("DELETE", `/api/agents/${made.id}`);
});

test("an instance in a container is watched, typed into, answered in place and ended like a local one", async () => {
  step = "container";
  const engine = process.env.SWITCHBOARD_TEST_ENGINE;
  assert.ok(engine, "SWITCHBOARD_TEST_ENGINE names a container engine (tests/api/dashboard.rs starts one)");
  const runner = { kind: "container", image: process.env.SWITCHBOARD_TEST_IMAGE, engine, network: "none" };
  const agent = await call("POST", "/api/agents", { name: "boxed-shell", project_path: project("boxed"), command: ["/bin/sh"], settings: { runner } });
  const instance = await call("POST", `/api/agents/${agent.id}/instances`, {});
  await page.goto(`${base}/#/i/${instance.id}`);
  const view = page.locator(`.instance-view[data-instance="${instance.id}"]`);
  await view.locator(".view-head .runner", { hasText: "in a container" }).waitFor();
  await page.click(`[data-terminal="${instance.id}"]`);
  await page.keyboard.type("echo boxed-$((6*7))");
  await page.keyboard.press("Enter");
  await showsText(instance.id, "boxed-42");
  await page.keyboard.type("read -p 'Ship the box? [y/N] ' a; echo shipped-$a");
  await page.keyboard.press("Enter");
  await page.goto(`${base}/#/`);
  const entry = page.locator(`#waiting .waiting-item[data-instance="${instance.id}"]`);
  await entry.locator(".prompt", { hasText: "Ship the box?" }).waitFor().catch(async (e) => {
    const now = await call("GET", `/api/instances/${instance.id}`);
    const out = await transcript(instance.id);
    throw new Error(`${e.message}\n${JSON.stringify(now)}\n${JSON.stringify(out)}`);
  });
  await entry.locator("button.quick", { hasText: /^y$/ }).click();
  await entry.waitFor({ state: "detached" });
  await waitUntil(async () => (await transcript(instance.id)).includes("shipped-y"), "the box answered y");
  await page.goto(`${base}/#/i/${instance.id}`);
  await view.locator("button:has-text('Terminate')").click();
  await view.locator(".view-head .badge.terminated").waitFor();
});

test("API answers are neither cached nor sniffed", async () => {
  for (const [path, auth] of [["/api/tasks", true], ["/api/tasks", false]]) {
    const res = await fetch(base + path, { headers: auth ? { Authorization: `Bearer ${token}` } : {} });
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(res.headers.get("cache-control"), "no-store", path);
  }
});

test("no errors in the console", () => {
  // Expected and therefore allowed: the 422 of the deliberate validation error, the
  // 409 that lists the work a deletion would lose, and failed connections while the
  // server was down on purpose.
  for (const p of problems) console.log(`console (${p.step}${p.outage ? ", server down" : ""}): ${p.text}`);
  const unexpected = problems.filter((p) => !(
    (["agent form", "tasks and webhooks", "sign-in link"].includes(p.step) && /status of (422|401)/.test(p.text))
    || (p.step === "workspaces" && /status of 409/.test(p.text))
    || (p.step === "moved on" && /status of 409/.test(p.text))
    || (p.outage && /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|net::ERR_|status of 50[23]/.test(p.text))));
  assert.deepEqual(unexpected, []);
});
