// LoRA Chain rows in the graph editor.
//
// Each row is one canvas-drawn widget named lora_1, lora_2, ... (top to bottom) whose value is
// {on, lora, strength, strength_model, strength_clip}; the API prompt carries it under that name.
// The saved workflow keeps the rows by name too (node.lora_rows), never in the positional
// widgets_values, so rows survive reordering, saving, PNG/API loads and copy/paste.
import { app } from "../../scripts/app.js";
import { addButton, chainCallback, fetchJson, findWidget, toastError } from "./common.js";
import { lastErrorFor } from "./validation.js";

const NODE_TYPE = "PromptMediaLoraChain";
const ROW_TYPE = "prompt_media_lora_row";
const ROWS_KEY = "lora_rows";
const ROW_KEY = /^lora_([1-9]\d*)$/;
const MARGIN = 15;          // core widgets' side margin
const ICON = 16;
const STEP = 0.05;
const MIN_WIDTH = 380;

const clampStrength = (v) => Math.round(Math.min(10, Math.max(-10, v)) * 100) / 100;

function newRowValue(v = {}) {
  const num = (x) => (typeof x === "number" && isFinite(x) ? clampStrength(x) : undefined);
  const strength = num(v.strength) ?? num(v.strength_model) ?? 1;
  return {
    on: v.on !== false,
    lora: typeof v.lora === "string" ? v.lora : "",
    strength,
    strength_model: num(v.strength_model) ?? strength,
    strength_clip: num(v.strength_clip) ?? strength,
  };
}

// {lora_2: {...}, lora_10: {...}, other: ...} -> [[key, row value]] in numeric row order
function rowsByNumber(inputs) {
  return Object.entries(inputs ?? {})
    .map(([key, value]) => [Number(ROW_KEY.exec(key)?.[1]), key, value])
    .filter(([n, , value]) => n && value && typeof value === "object" && !Array.isArray(value))
    .sort((a, b) => a[0] - b[0])
    .map(([, key, value]) => [key, newRowValue(value)]);
}

let loraNames = null;   // fetched when a picker first opens, refreshed on each later opening
async function fetchLoraNames() {
  try {
    loraNames = await fetchJson("/models/loras");
  } catch (e) {
    toastError("LoRA Chain: could not list the LoRAs", e);
  }
  return loraNames ?? [];
}

// x ranges of a row's parts, left to right: toggle, name, strength box(es), up, down, remove
function rowLayout(width, separate) {
  let right = width - MARGIN;
  const take = (w, gap = 2) => { const r = [right - w, right]; right -= w + gap; return r; };
  const remove = take(ICON), down = take(ICON), up = take(ICON, 6);
  const strengths = separate
    ? [["strength_clip", "C", take(54, 4)], ["strength_model", "M", take(54, 6)]].reverse()
    : [["strength", "", take(64, 6)]];
  return { toggle: [MARGIN, MARGIN + 18], name: [MARGIN + 24, right], strengths, up, down, remove };
}

function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  while (text.length > 1 && ctx.measureText(text + "…").width > width) text = text.slice(0, -1);
  return text + "…";
}

function makeRowWidget(value) {
  return {
    type: ROW_TYPE,
    name: "lora_0",          // renumbered by the node
    _value: newRowValue(value),
    // the front end assigns values it loads (API JSON) straight to widget.value: keep them whole
    get value() { return this._value; },
    set value(v) { this._value = newRowValue(v); },
    options: {},             // serialised into the API prompt under its name
    serialize: false,        // not in the positional widgets_values: see ROWS_KEY
    y: 0,

    // where the toggle, name, strengths and buttons are, in node x coordinates (tests use it too)
    zones(node) {
      return rowLayout(node.size[0], node.separateStrengths());
    },

    computeSize(width) {
      return [width, LiteGraph.NODE_WIDGET_HEIGHT];
    },

    draw(ctx, node, width, y, height) {
      const v = this.value, L = rowLayout(width, node.separateStrengths());
      const mid = y + height / 2;
      ctx.save();
      ctx.fillStyle = LiteGraph.WIDGET_BGCOLOR;
      // the row a refused prompt named (a missing LoRA): red until the next queue
      ctx.strokeStyle = lastErrorFor(node, this.name) ? "#e33" : LiteGraph.WIDGET_OUTLINE_COLOR;
      ctx.beginPath();
      ctx.roundRect(MARGIN, y, width - 2 * MARGIN, height, height * 0.5);
      ctx.fill();
      ctx.stroke();
      ctx.globalAlpha *= v.on ? 1 : 0.45;
      ctx.textBaseline = "middle";
      // toggle
      ctx.fillStyle = v.on ? "#5a5" : "#555";
      ctx.beginPath();
      ctx.arc(L.toggle[0] + 10, mid, 6, 0, Math.PI * 2);
      ctx.fill();
      // name
      ctx.fillStyle = v.lora ? LiteGraph.WIDGET_TEXT_COLOR : LiteGraph.WIDGET_SECONDARY_TEXT_COLOR;
      ctx.textAlign = "left";
      ctx.fillText(fitText(ctx, v.lora || "choose a LoRA…", L.name[1] - L.name[0]), L.name[0], mid);
      // strengths: "◂ 1.00 ▸"
      for (const [key, label, [a, b]] of L.strengths) {
        ctx.fillStyle = LiteGraph.WIDGET_SECONDARY_TEXT_COLOR;
        ctx.textAlign = "left";
        ctx.fillText("◂", a, mid);
        ctx.textAlign = "right";
        ctx.fillText("▸", b, mid);
        ctx.textAlign = "center";
        ctx.fillStyle = LiteGraph.WIDGET_TEXT_COLOR;
        ctx.fillText(`${label}${label ? " " : ""}${Number(v[key]).toFixed(2)}`, (a + b) / 2, mid);
      }
      // move up, move down, remove
      ctx.fillStyle = LiteGraph.WIDGET_SECONDARY_TEXT_COLOR;
      ctx.textAlign = "center";
      for (const [[a, b], glyph] of [[L.up, "▲"], [L.down, "▼"], [L.remove, "✕"]]) {
        ctx.fillText(glyph, (a + b) / 2, mid);
      }
      ctx.restore();
    },

    mouse(event, pos, node) {
      if (event.type !== "pointerdown") return false;
      const x = pos[0], L = this.zones(node);
      const inside = ([a, b]) => x >= a && x <= b;
      if (inside(L.toggle)) this.value.on = !this.value.on;
      else if (inside(L.name)) this.pickLora(event, node);
      else if (inside(L.up)) node.moveLoraRow(this, -1);
      else if (inside(L.down)) node.moveLoraRow(this, +1);
      else if (inside(L.remove)) node.removeLoraRow(this);
      else {
        const hit = L.strengths.find(([, , range]) => inside(range));
        if (!hit) return false;
        const [key, , [a, b]] = hit, third = (b - a) / 3;
        if (x < a + third) this.setStrength(key, this.value[key] - STEP);
        else if (x > b - third) this.setStrength(key, this.value[key] + STEP);
        else app.canvas.prompt("Strength", this.value[key], (typed) => {
          const n = Number(typed);
          if (isFinite(n)) this.setStrength(key, n);
          node.setDirtyCanvas(true, true);
        }, event);
      }
      node.setDirtyCanvas(true, true);
      return true;
    },

    // shared edits move all three so switching the node to "separate" starts from the same value;
    // a model edit also moves the shared one for the way back
    setStrength(key, n) {
      const v = this.value, s = clampStrength(n);
      if (key === "strength") v.strength = v.strength_model = v.strength_clip = s;
      else {
        v[key] = s;
        if (key === "strength_model") v.strength = s;
      }
    },

    async pickLora(event, node) {
      const names = await fetchLoraNames();
      if (!names.length) return;
      // className "dark" is what combo menus use: the front end adds its filter box to those
      // (longer than 4 entries), and keys typed there never reach the global shortcuts
      new LiteGraph.ContextMenu(names, {
        event, title: "LoRA", className: "dark", scale: Math.max(1, app.canvas.ds?.scale ?? 1),
        callback: (name) => { this.value.lora = name; node.setDirtyCanvas(true, true); },
      });
    },
  };
}

const nodeMethods = {
  separateStrengths() {
    return findWidget(this, "strength_mode")?.value === "separate";
  },

  loraRowWidgets() {
    return (this.widgets ?? []).filter((w) => w.type === ROW_TYPE);
  },

  // rows sit between the node's own widgets and the "Add LoRA" button, numbered top to bottom
  addLoraRow(value = {}) {
    const widget = makeRowWidget(value);
    const button = this.widgets.indexOf(this.addLoraButton);
    this.widgets.splice(button >= 0 ? button : this.widgets.length, 0, widget);
    this.loraRowsChanged();
    return widget;
  },

  removeLoraRow(widget) {
    this.removeWidget(widget);
    this.loraRowsChanged();
  },

  moveLoraRow(widget, delta) {
    const rows = this.loraRowWidgets(), from = rows.indexOf(widget), to = from + delta;
    if (from < 0 || to < 0 || to >= rows.length) return;
    const i = this.widgets.indexOf(rows[from]), j = this.widgets.indexOf(rows[to]);
    [this.widgets[i], this.widgets[j]] = [this.widgets[j], this.widgets[i]];
    this.loraRowsChanged();
  },

  // entries: [[key, value]] in row order; keepNames keeps the keys (lora_2, lora_9...) instead of
  // renumbering, for the API JSON loader, which then assigns each value to the widget of its name
  setLoraRows(entries, keepNames = false) {
    for (const widget of this.loraRowWidgets()) this.removeWidget(widget);
    for (const [, value] of entries) this.addLoraRow(value);
    if (keepNames) this.loraRowWidgets().forEach((w, i) => { w.name = entries[i][0]; });
    this.loraRowsChanged(!keepNames);
  },

  loraRowsChanged(renumber = true) {
    if (renumber) this.loraRowWidgets().forEach((w, i) => { w.name = `lora_${i + 1}`; });
    const [w, h] = this.computeSize();
    this.setSize([Math.max(this.size[0], w, MIN_WIDTH), h]);
    this.setDirtyCanvas(true, true);
  },
};

// app.loadApiJson creates nodes without configure() and sets widget values by input name, so
// rows must exist by then: onAdded (called with the API id already set) builds them from here.
let apiPromptBeingLoaded = null;

app.registerExtension({
  name: "prompt_media.lora_chain",

  setup() {
    const loadApiJson = app.loadApiJson;
    app.loadApiJson = function (apiData, ...rest) {
      apiPromptBeingLoaded = apiData;
      try {
        return loadApiJson.call(this, apiData, ...rest);
      } finally {
        apiPromptBeingLoaded = null;
      }
    };
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    Object.assign(nodeType.prototype, nodeMethods);
    const chain = (name, after) => chainCallback(nodeType.prototype, name, after);

    chain("onNodeCreated", function () {
      this.addLoraButton = addButton(this, "+ Add LoRA", () => this.addLoraRow());
      this.loraRowsChanged();
    });

    chain("onAdded", function () {
      const data = apiPromptBeingLoaded?.[String(this.id)];
      if (data?.class_type === NODE_TYPE) this.setLoraRows(rowsByNumber(data.inputs), true);
    });

    chain("onSerialize", function (info) {
      info[ROWS_KEY] = Object.fromEntries(this.loraRowWidgets().map((w) => [w.name, { ...w.value }]));
    });

    chain("onConfigure", function (info) {
      delete this[ROWS_KEY];   // configure() copies unknown keys onto the node
      this.setLoraRows(rowsByNumber(info?.[ROWS_KEY]));
    });
  },
});
