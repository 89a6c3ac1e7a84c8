// Helpers shared by the Prompt Media front-end extensions (lora_chain.js, oom_session.js, ...).
// ComfyUI loads every .js under js/ as an extension; this module only exports functions and
// registers nothing, so loading it on its own is harmless.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

export const findWidget = (node, name) => node.widgets?.find((w) => w.name === name);

// Wraps prototype[name]: the original runs first and its result is returned; `after` then runs
// with the same `this` and arguments.
export function chainCallback(prototype, name, after) {
  const original = prototype[name];
  prototype[name] = function (...args) {
    const result = original?.apply(this, args);
    after.apply(this, args);
    return result;
  };
}

// A button widget kept out of the API prompt (options.serialize) and out of the saved workflow's
// positional widgets_values (serialize).
export function addButton(node, label, onClick) {
  const button = node.addWidget("button", label, null, onClick);
  button.options = { ...(button.options ?? {}), serialize: false };
  button.serialize = false;
  return button;
}

// The front end's toast (severity: success, info, warn, error). Errors stay until closed.
export function toast(severity, summary, detail = "", life = severity === "error" ? undefined : 6000) {
  const toasts = app.extensionManager?.toast;
  if (toasts) toasts.add({ severity, summary, detail, life });
  else console.warn(`[Prompt Media] ${summary}: ${detail}`);   // a front end without toasts
}

export const toastError = (summary, error) => toast("error", summary, String(error?.message ?? error));

// GET (no body) or POST (JSON body) one of our routes; the parsed JSON, or an Error carrying the
// server's own message and status.
export async function fetchJson(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await api.fetchApi(path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.error ?? `${path}: HTTP ${response.status}`);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

// The one way our nodes show text: up to `lines` lines drawn in the node body, word-wrapped, at a
// fixed height (so the widgets below never move). A status may carry a link: then it is drawn as
// one and a click calls onLink(link). Not serialised: it is status, not a setting.
const STATUS_WIDGET = "pm_status";
const LINE_HEIGHT = 16;
const LINK_COLOR = "#7ab4ff";

function wrapLines(ctx, text, width, maxLines) {
  const lines = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(next).width > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    lines.length = maxLines;
    let last = lines[maxLines - 1];
    while (last && ctx.measureText(last + "…").width > width) last = last.slice(0, -1);
    lines[maxLines - 1] = last + "…";
  }
  return lines;
}

export function addStatusLine(node, { lines = 1, onLink = null } = {}) {
  return node.addCustomWidget({
    name: STATUS_WIDGET,
    type: STATUS_WIDGET,
    value: "",
    link: null,
    serialize: false,              // not in the saved workflow's widgets_values
    options: { serialize: false }, // not in the API prompt
    draw(ctx, _node, width, y) {
      if (!this.value) return;
      ctx.save();
      ctx.font = "12px sans-serif";
      ctx.fillStyle = this.link ? LINK_COLOR : LiteGraph.WIDGET_SECONDARY_TEXT_COLOR ?? "#9ab";
      ctx.textBaseline = "middle";
      wrapLines(ctx, this.value, width - 30, lines).forEach((text, i) => {
        ctx.fillText(text, 15, y + LINE_HEIGHT * (i + 0.5) + 3);
      });
      ctx.restore();
    },
    mouse(event, _pos, _node) {
      if (event.type !== "pointerdown" || !this.link || !onLink) return false;
      onLink(this.link);
      return true;
    },
    computeSize(width) {
      return [width, LINE_HEIGHT * lines + 6];
    },
  });
}

export function setStatusLine(node, text, { link = null } = {}) {
  const widget = findWidget(node, STATUS_WIDGET);
  if (!widget) return;
  widget.value = text;
  widget.link = link;
  node.setDirtyCanvas(true, true);
}
