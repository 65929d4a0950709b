// Building the page: elements from data, and text supplied by agents and users
// shown so that it cannot pass for the page's own words.

// ---------------------------------------------------------------- helpers

/** Builds an element: h("div", {class: "x", onclick: f}, "text", child). Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const short = (id) => String(id).slice(0, 8);

// ---------------------------------------------------------------- text from agents and users

// Text that agents (or anyone with an instance token) and users supply is never
// allowed to pass for the page's own words, to hide characters, or to take the
// screen: it is shown with its control and direction characters made visible,
// isolated from the text around it (<bdi>, dir=auto), clamped in lines and
// characters (with "Show all"), and attributed to whoever wrote it.
const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

/** `text` with control characters as their visible pictures and direction marks as ⟨U+XXXX⟩. */
export function visible(text) {
  return String(text ?? "")
    .replace(CONTROL, (c) => (c === "\u007f" ? "\u2421" : c < " " ? String.fromCharCode(0x2400 + c.charCodeAt(0)) : `⟨U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`))
    .replace(BIDI, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase()}⟩`);
}

/** Supplied text inline: isolated and visible. */
export const said = (text) => h("bdi", {}, visible(text));

/** `text` cut to `lines` lines and `chars` characters; whether it was cut. */
export function clampText(text, lines, chars, tail = false) {
  const all = String(text ?? "");
  const split = all.split("\n");
  let cut = (tail ? split.slice(-lines) : split.slice(0, lines)).join("\n");
  if (cut.length > chars) cut = tail ? cut.slice(-chars) : cut.slice(0, chars);
  return { text: cut, clamped: cut.length < all.length };
}

/** Supplied text as a block: quoted, isolated, clamped, with "Show all" when cut.
 * `tail`: keep its end (a screen read at the question, which is at the bottom). */
export function quote(text, { lines = 6, chars = 600, cls = "", tail = false } = {}) {
  const all = String(text ?? "");
  const { text: cut, clamped } = clampText(all, lines, chars, tail);
  const body = h("span", {}, visible(cut));
  const box = h("blockquote", { class: `supplied ${cls}`.trim(), dir: "auto" }, body);
  if (clamped && tail) box.prepend(h("span", { class: "clamped" }, "…"));
  if (clamped) {
    const total = all.split("\n").length;
    const more = h("button", { type: "button", class: "ghost show-all" }, `Show all (${total} lines, ${all.length} characters)`);
    more.addEventListener("click", (e) => {
      e.stopPropagation();
      const open = box.classList.toggle("expanded");
      body.textContent = visible(open ? all : cut);
      more.textContent = open ? "Show less" : `Show all (${total} lines, ${all.length} characters)`;
    });
    box.append(...(tail ? [] : [h("span", { class: "clamped" }, "…")]), more);
  }
  return box;
}

/** Whether an instance's question was read off its screen (the question at its end),
 * rather than said by the agent (a message, a hook: the question from its start). */
export const readOffScreen = (instance) => instance.status_source === "kernel" || instance.status_source === "pattern";

/** Who wrote what follows: the agent's name and the instance, never the page's voice. */

/** Paste markers in pasted text would end a bracketed paste early. */
export function withoutPasteMarkers(text) {
  let out = String(text);
  while (out.includes("\u001b[200~") || out.includes("\u001b[201~")) {
    out = out.split("\u001b[200~").join("").split("\u001b[201~").join("");
  }
  return out;
}
export const when = (at) => (at ? new Date(at).toLocaleString() : "");

export function showFieldError(form, error) {
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  const general = form.querySelector(".form-error");
  general.textContent = "";
  if (!error) return;
  const field = error.field || (error.message.match(/^([\w.]+):/) || [])[1];
  const input = field && form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (input) {
    input.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    input.after(h("div", { class: "field-error", role: "alert" }, error.message));
    input.focus();
  } else {
    general.textContent = error.message;
  }
}

export const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);
