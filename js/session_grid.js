// The session grid shared by the "Prompt Media" sidebar tab (gallery.js) and the index.html page
// written into each session folder (core/session_page.py inlines this file): pages per seed,
// rows = prompts, columns = variation values, the contact sheet's layout (computed by the server,
// core/gallery.py). Only the rows in view are in the DOM, so 10,000 images scroll smoothly.
//
// No imports and no side effects: ComfyUI loads every .js under js/ as an extension, and the
// page inlines it into its module script, which must also work from disk. Every text from
// a prompt, a sidecar or a file name goes into the DOM as text (textContent), never as markup.

export const GRID_CSS = `
.pmg [hidden] { display: none !important; }
.pmg { --pmg-bg: #1b1b1b; --pmg-fg: #ddd; --pmg-muted: #999; --pmg-line: #333; --pmg-accent: #7ab4ff;
  color: var(--pmg-fg); font: 12px/1.35 system-ui, sans-serif; }
.pmg-scroll { position: relative; overflow: auto; height: 100%; }
.pmg-spacer { position: relative; }
.pmg-item { position: absolute; left: 0; box-sizing: border-box; white-space: nowrap; }
.pmg-page { font-weight: 600; font-size: 13px; padding: 6px 4px 0; color: var(--pmg-fg); }
.pmg-cols, .pmg-cells { display: flex; gap: 4px; padding-left: 4px; }
.pmg-col { color: var(--pmg-muted); overflow: hidden; text-overflow: ellipsis; white-space: normal;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; font-size: 11px; }
.pmg-prompt { color: var(--pmg-fg); padding: 2px 4px 2px; overflow: hidden; text-overflow: ellipsis; }
.pmg-cell { position: relative; flex: none; background: #2a2a2a; border: 2px solid transparent;
  border-radius: 4px; cursor: pointer; overflow: hidden; }
.pmg-cell.pmg-empty { cursor: default; background: #262626; }
.pmg-cell.pmg-dim { opacity: .15; cursor: default; }
.pmg-cell img { width: 100%; height: 100%; object-fit: contain; display: block; }
.pmg-cell.pmg-current { border-color: var(--pmg-accent); }
.pmg-cell.pmg-picked { border-color: #f5c542; }
.pmg-star { position: absolute; top: 1px; right: 3px; color: #f5c542; font-size: 14px; text-shadow: 0 0 2px #000; }
.pmg-caption { position: absolute; left: 0; right: 0; bottom: 0; font-size: 10px; padding: 1px 3px;
  background: rgba(0,0,0,.6); color: #ccc; overflow: hidden; text-overflow: ellipsis; }
.pmg-params { display: grid; grid-template-columns: max-content 1fr; gap: 2px 8px; font-size: 12px; }
.pmg-params dt { color: var(--pmg-muted); }
.pmg-params dd { margin: 0; white-space: pre-wrap; word-break: break-word; }
.pmg-params mark { background: #3b4f7a; color: #fff; border-radius: 2px; padding: 0 2px; }
.pmg-filters { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.pmg-filters input, .pmg-filters select, .pmg-filters button { background: #222; color: var(--pmg-fg);
  border: 1px solid #444; border-radius: 4px; font: inherit; padding: 2px 4px; max-width: 100%; }
.pmg-filters input[type=search] { flex: 1 1 120px; }
.pmg-overlay { position: fixed; inset: 0; background: rgba(0,0,0,.75); z-index: 10000; display: flex;
  align-items: center; justify-content: center; }
.pmg-overlay-box { background: var(--pmg-bg); padding: 12px; border-radius: 6px; max-width: 94vw; max-height: 90vh;
  overflow: auto; display: flex; flex-direction: column; gap: 8px; }
.pmg-close { align-self: flex-end; }
.pmg-compare { display: flex; gap: 8px; overflow: auto; }
.pmg-compare figure { margin: 0; flex: 1 1 0; min-width: 160px; }
.pmg-compare img { width: 100%; height: auto; display: block; }
.pmg-compare figcaption { font-size: 11px; color: var(--pmg-muted); white-space: pre-wrap; }
.pmg-compare .pmg-diff { color: #f5c542; }
`;

export function ensureStyles(doc = document) {
  if (doc.getElementById("pmg-styles")) return;
  const style = doc.createElement("style");
  style.id = "pmg-styles";
  style.textContent = GRID_CSS;
  doc.head.appendChild(style);
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

// ------------------------------------------------------------------------------- filtering

// The filter a user set: text in the prompt, a variation value, a seed, a LoRA, starred only.
export const NO_FILTER = Object.freeze({ text: "", value: "", seed: "", lora: "", starred: false });

// What the filter controls offer for a session view: every variation value, seed and LoRA.
export function filterChoices(view) {
  const values = new Set(), seeds = new Set(), loras = new Set();
  for (const image of view.images) {
    for (const [name, value] of Object.entries(image.values ?? {})) values.add(`${name}=${value}`);
    if (image.seed !== null && image.seed !== undefined) seeds.add(String(image.seed));
    for (const lora of image.loras ?? []) loras.add(lora);
  }
  const sorted = (set) => [...set].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return { values: sorted(values), seeds: sorted(seeds), loras: sorted(loras) };
}

// The filter controls for a view: prompt text, variation value, seed, LoRA, starred; `extra`
// elements (e.g. a size slider, a Compare button) go at the end. onChange(filter) on each edit.
export function filterBar(view, onChange, ...extra) {
  const choices = filterChoices(view);
  const bar = el("div", { class: "pmg-filters" });
  const changed = () => onChange(readFilter(bar));
  const select = (name, label, values) => el("select", { name, title: label, onchange: changed },
    el("option", { value: "", text: label }), values.map((v) => el("option", { value: v, text: v })));
  bar.append(...[
    el("input", { type: "search", name: "text", placeholder: "Filter prompts", oninput: changed }),
    choices.values.length ? select("value", "any value", choices.values) : null,
    choices.seeds.length > 1 ? select("seed", "any seed", choices.seeds) : null,
    choices.loras.length ? select("lora", "any LoRA", choices.loras) : null,
    el("label", { title: "starred only" }, el("input", { type: "checkbox", name: "starred", onchange: changed }), " ★"),
    ...extra].filter(Boolean));
  return bar;
}

export function readFilter(bar) {
  const value = (name) => bar.querySelector(`[name=${name}]`)?.value ?? "";
  return { text: value("text"), value: value("value"), seed: value("seed"), lora: value("lora"),
    starred: !!bar.querySelector("[name=starred]")?.checked };
}

// A full-window overlay holding `content`; a click outside it or on Close removes it.
export function showOverlay(content) {
  const overlay = el("div", { class: "pmg-overlay", onclick: (e) => { if (e.target === overlay) overlay.remove(); } },
    el("div", { class: "pmg-overlay-box" },
      el("button", { class: "pmg-close", onclick: () => overlay.remove() }, "Close"), content));
  document.body.append(overlay);
  return overlay;
}

export function imageMatches(image, filter, marks) {
  if (filter.value) {
    const at = filter.value.indexOf("=");
    if ((image.values ?? {})[filter.value.slice(0, at)] !== filter.value.slice(at + 1)) return false;
  }
  if (filter.seed !== "" && String(image.seed) !== filter.seed) return false;
  if (filter.lora && !(image.loras ?? []).includes(filter.lora)) return false;
  if (filter.starred && !marks?.[image.name]?.star) return false;
  return true;
}

// ------------------------------------------------------------------------------- the grid

const PAGE_H = 26, COLUMNS_H = 34, LABEL_H = 20, CAPTION_H = 0, GAP = 4;

// A virtualised grid in `container`. options: thumbUrl(image) -> src, onSelect(index, event),
// size (thumbnail px). Call setView(view, marks), setFilter(filter), setSize(px), setCurrent(i),
// setPicked(set of indexes).
export class SessionGrid {
  constructor(container, { thumbUrl, onSelect, size = 128 } = {}) {
    this.thumbUrl = thumbUrl;
    this.onSelect = onSelect;
    this.size = size;
    this.view = null;
    this.marks = {};
    this.filter = NO_FILTER;
    this.current = -1;
    this.picked = new Set();
    this.scroll = el("div", { class: "pmg-scroll", "data-testid": "pmg-scroll" });
    this.spacer = el("div", { class: "pmg-spacer" });
    this.scroll.append(this.spacer);
    container.append(this.scroll);
    this.scroll.addEventListener("scroll", () => this.render());
    new ResizeObserver(() => this.render()).observe(this.scroll);
  }

  setView(view, marks = {}) {
    const keepTop = this.view?.folder === view?.folder ? this.scroll.scrollTop : 0;
    this.view = view;
    // pages name their cells' images; the grid works with their places in view.images
    const indexOf = new Map(view?.images.map((image, i) => [image.name, i]) ?? []);
    this.cells = new Map();
    for (const page of view?.pages ?? []) {
      for (const row of page.rows) this.cells.set(row, row.cells.map((name) => indexOf.get(name) ?? null));
    }
    this.marks = marks;
    this.layout();
    this.scroll.scrollTop = keepTop;
    this.render(true);
  }

  setMarks(marks) { this.marks = marks; this.layout(); this.render(true); }
  setFilter(filter) { this.filter = { ...NO_FILTER, ...filter }; this.layout(); this.scroll.scrollTop = 0; this.render(true); }
  setSize(size) { this.size = size; this.layout(); this.render(true); }
  setCurrent(index) { this.current = index; this.render(true); }
  setPicked(picked) { this.picked = new Set(picked); this.render(true); }

  // The rows to show (page titles, column labels, prompt rows) with their y, after filtering.
  layout() {
    this.items = [];
    let y = 0;
    const view = this.view, f = this.filter, text = f.text.trim().toLowerCase();
    if (!view) { this.spacer.style.height = "0px"; return; }
    const cellH = this.size + GAP;
    let widest = 0;
    for (const page of view.pages) {
      if (f.seed !== "" && String(page.seed) !== f.seed) continue;
      const rows = [];
      for (const row of page.rows) {
        if (text && !row.prompt.toLowerCase().includes(text)) continue;
        const shown = this.cells.get(row).map((i) => i !== null && imageMatches(view.images[i], f, this.marks));
        if (shown.some(Boolean)) rows.push({ row, shown });
      }
      if (!rows.length) continue;
      widest = Math.max(widest, page.columns.length);
      this.items.push({ kind: "page", page, y, h: PAGE_H });
      y += PAGE_H;
      this.items.push({ kind: "columns", page, y, h: COLUMNS_H });
      y += COLUMNS_H;
      for (const { row, shown } of rows) {
        this.items.push({ kind: "row", page, row, shown, y, h: LABEL_H + cellH + CAPTION_H });
        y += LABEL_H + cellH + CAPTION_H;
      }
    }
    this.spacer.style.height = `${y + GAP}px`;
    this.spacer.style.width = `${GAP + widest * (this.size + GAP)}px`;
  }

  visibleCount() {
    return this.items?.filter((item) => item.kind === "row")
      .reduce((n, item) => n + item.shown.filter(Boolean).length, 0) ?? 0;
  }

  render(force = false) {
    if (!this.items) return;
    const top = this.scroll.scrollTop, bottom = top + this.scroll.clientHeight + 200;
    const first = Math.max(0, this.items.findIndex((item) => item.y + item.h >= top - 200));
    const key = `${first}:${bottom}`;
    if (!force && key === this.lastKey) return;
    this.lastKey = key;
    const nodes = [];
    for (let i = first; i < this.items.length && this.items[i].y < bottom; i++) {
      nodes.push(this.renderItem(this.items[i]));
    }
    this.spacer.replaceChildren(...nodes);
  }

  renderItem(item) {
    const width = `${Math.max(parseFloat(this.spacer.style.width) || 0, this.scroll.clientWidth)}px`;
    const style = { top: `${item.y}px`, height: `${item.h}px`, width };
    if (item.kind === "page") {
      const total = item.page.rows.reduce((n, r) => n + r.cells.filter((c) => c !== null).length, 0);
      return el("div", { class: "pmg-item pmg-page", style }, `${item.page.title} · ${total} images`);
    }
    if (item.kind === "columns") {
      const labels = item.page.columns.map((label) => el("div", {
        class: "pmg-col", title: label, style: { width: `${this.size}px`, flex: "none" } }, label));
      return el("div", { class: "pmg-item pmg-cols", style }, labels);
    }
    const { row, shown } = item;
    const cells = this.cells.get(row).map((index, col) => this.renderCell(index, shown[col], item.page));
    return el("div", { class: "pmg-item", style },
      el("div", { class: "pmg-prompt", title: row.prompt, style: { width: "100%" } },
        `${row.prompt_index + 1}. ${row.prompt}`),
      el("div", { class: "pmg-cells" }, cells));
  }

  renderCell(index, shown, page) {
    const style = { width: `${this.size}px`, height: `${this.size}px` };
    if (index === null) return el("div", { class: "pmg-cell pmg-empty", style, title: "not generated (yet)" });
    const image = this.view.images[index];
    const classes = ["pmg-cell"];
    if (!shown) classes.push("pmg-dim");
    if (index === this.current) classes.push("pmg-current");
    if (this.picked.has(index)) classes.push("pmg-picked");
    const caption = (page.captions ?? []).map((name) => image.values?.[name]).filter(Boolean).join(" · ");
    return el("div", {
      class: classes.join(" "), style, title: `${image.name} · seed ${image.seed}`,
      "data-name": image.name,
      onclick: shown ? (event) => this.onSelect?.(index, event) : null,
    },
    el("img", { src: this.thumbUrl(image), alt: image.name, loading: "lazy", decoding: "async" }),
    this.marks?.[image.name]?.star ? el("span", { class: "pmg-star", text: "★" }) : null,
    caption ? el("div", { class: "pmg-caption", text: caption }) : null);
  }
}

// ------------------------------------------------------------------------------- parameters

// The prompt as text nodes, with each part that is one of the image's variation values marked.
export function markedPrompt(prompt, values) {
  const wanted = new Set(Object.values(values ?? {}).map((v) => String(v).trim()).filter(Boolean));
  const out = [];
  (prompt ?? "").split(/(,\s*)/).forEach((part) => {
    out.push(wanted.has(part.trim()) ? el("mark", { text: part }) : document.createTextNode(part));
  });
  return out;
}

const fmt = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));

// A definition list of an image's parameters (details: from the server or the page's data).
export function paramsList(details) {
  const p = details.parameters ?? {};
  const rows = [
    ["prompt", el("span", {}, markedPrompt(p.prompt, details.values))],
    ["negative", fmt(p.negative)],
    ["seed", fmt(p.seed)], ["steps", fmt(p.steps)],
    [p.guidance !== null && p.guidance !== undefined ? "cfg / guidance" : "cfg",
      p.guidance !== null && p.guidance !== undefined ? `${fmt(p.cfg)} / ${fmt(p.guidance)}` : fmt(p.cfg)],
    ["sampler", fmt(p.sampler)], ["scheduler", fmt(p.scheduler)], ["denoise", fmt(p.denoise)],
    ["size", p.width ? `${p.width}×${p.height}` : "—"],
    ["model", fmt(p.model)],
  ];
  for (const lora of details.loras ?? []) {
    rows.push(["LoRA", `${lora.name} · model ${fmt(lora.strength_model)} · clip ${fmt(lora.strength_clip)}`]);
  }
  if (details.trigger_words?.length) rows.push(["trigger words", details.trigger_words.join(", ")]);
  for (const [name, value] of Object.entries(details.values ?? {})) rows.push([`variation ${name}`, value]);
  for (const [what, hash] of Object.entries(details.hashes ?? {})) {
    if (hash) rows.push([`${what} sha256`, String(hash).slice(0, 12)]);
  }
  if (details.parent) rows.push(["from", `${details.parent.image}${details.parent.changes ? " · " + details.parent.changes : ""}`]);
  return el("dl", { class: "pmg-params" }, rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", {}, value)]));
}

// Images side by side, each with the parameters that differ between them.
export function compareView(items) {
  const keys = ["seed", "steps", "cfg", "sampler", "scheduler", "denoise", "model"];
  const differs = new Set(keys.filter((k) => new Set(items.map((it) => String(it.details.parameters?.[k]))).size > 1));
  const valueNames = [...new Set(items.flatMap((it) => Object.keys(it.details.values ?? {})))];
  for (const name of valueNames) {
    if (new Set(items.map((it) => it.details.values?.[name])).size > 1) differs.add(`variation ${name}`);
  }
  return el("div", { class: "pmg-compare", "data-testid": "pmg-compare" }, items.map(({ src, name, details }) => {
    const lines = [...differs].map((k) => k.startsWith("variation ")
      ? `${k.slice(10)}: ${details.values?.[k.slice(10)] ?? "—"}` : `${k}: ${fmt(details.parameters?.[k])}`);
    return el("figure", {},
      el("img", { src, alt: name }),
      el("figcaption", {}, el("div", { text: name }), el("div", { class: "pmg-diff", text: lines.join("\n") })));
  }));
}
