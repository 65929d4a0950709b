// Switchboard dashboard: one EventSource on /api/events keeps every list live;
// each open instance has a tab with its terminal (xterm.js fed by the instance's
// own stream) and its messages. Plain ES modules, no build step.
// The modules under /static/js: dom (elements, supplied text), api, state (and the
// events that change it), live (the event stream, notifications), instance (tabs
// and terminals), router, and one module per page under pages/.

import { api, onUnauthorized } from "/static/js/api.js";
import { state, loadSnapshot, pollUsage } from "/static/js/state.js";
import { connect, updateNotifyButton } from "/static/js/live.js";
import { tabs, tabStrip, views, currentTab, isShortcut } from "/static/js/instance.js";
import { page, route } from "/static/js/router.js";

document.addEventListener("keydown", (e) => {
  if (!isShortcut(e) || !state.started) return;
  e.preventDefault();
  const at = tabs.open.indexOf(currentTab());
  let target = null;
  if (e.code === "Digit0") { location.hash = "#/"; return; }
  if (e.code.startsWith("Digit")) target = tabs.open[Number(e.code.slice(5)) - 1];
  if (e.code === "BracketRight") target = tabs.open[(at + 1) % tabs.open.length];
  if (e.code === "BracketLeft") target = tabs.open[(at - 1 + tabs.open.length) % tabs.open.length];
  if (target) location.hash = `#/i/${target}`;
});

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { for (const view of tabs.views.values()) view.refit(); }, 100);
});
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- sign-in and start

const signin = document.getElementById("signin");
const signinError = document.getElementById("signin-error");

onUnauthorized(showSignIn);

function showSignIn() {
  if (!signin.hidden) return;
  signin.hidden = false;
  page.hidden = true;
  views.hidden = true;
  tabStrip.hidden = true;
  document.getElementById("nav").hidden = true;
  document.getElementById("signin-token").focus();
}

/** Exchanges the token, or a sign-in link's code, for the session cookie. */
async function exchange(credential) {
  try {
    await api("POST", "/api/session", credential);
    return true;
  } catch {
    return false;
  }
}

async function start() {
  signin.hidden = true;
  document.getElementById("nav").hidden = false;
  if (!state.started) {
    state.started = true;
    document.getElementById("main").append(views);
    updateNotifyButton();
    connect();
    pollUsage();
  }
  await loadSnapshot();
  route();
}

document.getElementById("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = document.getElementById("signin-token");
  if (await exchange({ token: input.value.trim() })) {
    input.value = "";
    signinError.textContent = "";
    await start();
  } else {
    signinError.textContent = "That token was not accepted.";
  }
});

// The printed address carries a one-time sign-in code, never the token: even kept
// in history it is of no use once it has been exchanged here (or 10 minutes on).
const fromAddress = new URLSearchParams(location.hash.slice(1)).get("login");
if (fromAddress) {
  history.replaceState(null, "", location.pathname + location.search);
  if (!(await exchange({ code: fromAddress }))) {
    signinError.textContent = "That sign-in link was used already or has expired. Run `switchboard login-link` for a new one, or paste the token.";
  }
}
const session = await api("GET", "/api/session").catch(() => ({ signed_in: false }));
if (session.signed_in) await start();
else showSignIn();
