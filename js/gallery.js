// The "Prompt Media" sidebar tab: sessions newest first, a session as the contact sheet's grid
// (session_grid.js), an image's parameters and actions (load its workflow, regenerate, vary, copy
// the A1111 parameters, open full size, star, tags), filters and compare. Updates live from the
// saver's "prompt_media.saved" websocket message. Data: the routes in nodes/gallery.py.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { fetchJson, toast, toastError } from "./common.js";
import { NO_FILTER, SessionGrid, compareView, el, ensureStyles, filterBar, paramsList, showOverlay } from "./session_grid.js";

const TAB_ID = "prompt-media";
const PREVIEW_ABOVE_PIXELS = 512 * 512;   // larger images come through /view as a webp preview
const REFRESH_MS = 400;                   // coalesces the saved messages of a fast session

const state = {
  root: null,            // the tab's element, built once and moved into each render(el)
  sessions: [],
  folder: null,          // the open session (relative to the output directory)
  view: null,
  marks: {},
  current: -1,
  details: null,
  picked: new Set(),
};

// ------------------------------------------------------------------------------- URLs

function viewUrl(folder, name, preview = false) {
  const query = new URLSearchParams({ filename: name, subfolder: folder, type: "output" });
  if (preview) query.set("preview", "webp;75");
  return api.apiURL(`/view?${query}`);
}

function thumbUrl(image) {
  const big = (image.width ?? 0) * (image.height ?? 0) > PREVIEW_ABOVE_PIXELS;
  return viewUrl(state.folder, image.name, big);
}

const q = (params) => new URLSearchParams(params).toString();

// ------------------------------------------------------------------------------- the list

async function loadSessions() {
  try {
    state.sessions = (await fetchJson("/prompt_media/sessions")).sessions;
  } catch (error) {
    toastError("Prompt Media gallery", error);
    return;
  }
  const list = state.root.querySelector(".pm-sessions");
  if (!state.sessions.length) {
    list.replaceChildren(el("p", { class: "pm-empty", text: "No sessions yet: queue one with OOM Variations' Queue session." }));
    return;
  }
  list.replaceChildren(...state.sessions.map((s) => el("button", {
    class: "pm-session", "data-folder": s.folder, title: s.folder, onclick: () => openSession(s.folder),
  },
  s.thumb ? el("img", { src: viewUrl(s.folder, s.thumb, (s.thumb_pixels ?? 0) > PREVIEW_ABOVE_PIXELS), alt: "", loading: "lazy" }) : el("span", { class: "pm-noimg" }),
  el("span", { class: "pm-session-text" },
    el("strong", { text: s.title }),
    el("span", { text: `${s.sources.join(", ") || "(no prompt file)"}` }),
    el("span", { class: `pm-state pm-${s.state}`, text: `${s.done}/${s.total ?? "?"} · ${s.state}` })))));
}

// ------------------------------------------------------------------------------- one session

async function openSession(folder) {
  state.folder = folder;
  state.current = -1;
  state.details = null;
  state.picked = new Set();
  showPane("session");
  state.root.querySelector(".pm-details").replaceChildren();
  await reloadSession(true);
}

async function reloadSession(resetFilters = false) {
  const folder = state.folder;
  let answer;
  try {
    answer = await fetchJson(`/prompt_media/session_view?${q({ folder })}`);
  } catch (error) {
    toastError("Prompt Media gallery", error);
    return;
  }
  if (folder !== state.folder) return;       // another session was opened meanwhile
  const view = answer.view;
  // the open and the picked images, by name: a live update may change their places in the list
  const nameOf = (i) => state.view?.images[i]?.name;
  const current = nameOf(state.current), picked = [...state.picked].map(nameOf);
  const at = new Map(view.images.map((image, i) => [image.name, i]));
  state.current = at.get(current) ?? -1;
  state.picked = new Set(picked.map((name) => at.get(name)).filter((i) => i !== undefined));
  state.view = view;
  state.marks = answer.marks ?? {};
  state.root.querySelector(".pm-title").textContent = `${view.title} · ${view.sources.join(", ")}`;
  state.root.querySelector(".pm-progress").textContent =
    `${view.done}/${view.total ?? "?"} jobs · ${answer.state}${view.skipped?.length ? ` · ${view.skipped.length} skipped` : ""}`;
  if (resetFilters) {
    // thumbnails as large as the panel allows for the widest page (64-160 px)
    const columns = Math.max(1, ...view.pages.map((p) => p.columns.length));
    const width = state.root.querySelector(".pm-grid").clientWidth || 300;
    state.grid.size = Math.max(64, Math.min(160, Math.floor((width - 12) / columns) - 6));
    buildFilters(view);
  }
  state.grid.setView(view, state.marks);
  state.grid.setCurrent(state.current);
  state.grid.setPicked(state.picked);
  updateCount();
}

function buildFilters(view) {
  const bar = filterBar(view, (filter) => { state.grid.setFilter(filter); updateCount(); },
    el("input", { type: "range", name: "size", min: 64, max: 320, step: 16, value: state.grid.size,
      title: "thumbnail size", oninput: (e) => state.grid.setSize(Number(e.target.value)) }),
    el("button", { name: "compare", disabled: "", onclick: () => openCompare().catch((e) => toastError("Compare", e)),
      title: "Ctrl+click images to pick them" }, "Compare"),
    el("span", { class: "pm-count" }));
  state.root.querySelector(".pmg-filters").replaceWith(bar);
  state.grid.setFilter(NO_FILTER);
}

function updateCount() {
  const count = state.root.querySelector(".pm-count");
  if (count) count.textContent = `${state.grid.visibleCount()} shown`;
  const compare = state.root.querySelector("[name=compare]");
  if (compare) {
    compare.toggleAttribute("disabled", state.picked.size < 2);
    compare.textContent = state.picked.size ? `Compare ${state.picked.size}` : "Compare";
  }
}

// ------------------------------------------------------------------------------- one image

async function imageDetails(name) {
  return fetchJson(`/prompt_media/image?${q({ folder: state.folder, name })}`);
}

async function selectImage(index, event) {
  if (event?.ctrlKey || event?.metaKey || event?.shiftKey) {      // pick for compare
    if (state.picked.has(index)) state.picked.delete(index);
    else state.picked.add(index);
    state.grid.setPicked(state.picked);
    updateCount();
    return;
  }
  state.current = index;
  state.grid.setCurrent(index);
  const image = state.view.images[index];
  try {
    state.details = await imageDetails(image.name);
  } catch (error) {
    toastError(image.name, error);
    return;
  }
  renderDetails(image);
}

function renderDetails(image) {
  const d = state.details, folder = state.folder;
  const star = !!state.marks[image.name]?.star;
  const tags = (state.marks[image.name]?.tags ?? []).join(", ");
  const action = (label, run, title) => el("button", { title, onclick: () => run().catch((e) => toastError(label, e)) }, label);
  state.root.querySelector(".pm-details").replaceChildren(
    el("div", { class: "pm-details-head" },
      el("strong", { text: image.name }),
      el("button", { class: "pm-star-button", title: star ? "Unstar" : "Star",
        onclick: () => setMarks(image.name, { star: !star }) }, star ? "★ starred" : "☆ star")),
    el("div", { class: "pm-actions" },
      action("Load workflow", () => loadWorkflow(folder, image.name), "Open this image's workflow in the editor"),
      action("Regenerate", () => regenerate(image.name, {}), "Queue exactly these parameters again (a new session)"),
      action("Vary…", async () => showVary(image.name), "Change seed, cfg, steps or the prompt and queue"),
      action("Copy A1111", () => copyText(d.a1111), "Copy the A1111 'parameters' text"),
      el("a", { href: viewUrl(folder, image.name), target: "_blank", rel: "noopener", class: "pm-link" }, "Full size")),
    el("div", { class: "pm-vary" }),
    el("label", { class: "pm-tags" }, "tags ",
      el("input", { name: "tags", value: tags, placeholder: "comma, separated",
        onchange: (e) => setMarks(image.name, { tags: e.target.value.split(",").map((t) => t.trim()).filter(Boolean) }) })),
    paramsList(d));
}

function showVary(name) {
  const p = state.details.parameters;
  const field = (label, key, value, type = "number") => el("label", {}, label,
    el(type === "textarea" ? "textarea" : "input", { name: key, type: type === "textarea" ? undefined : type,
      value: type === "textarea" ? undefined : value, rows: type === "textarea" ? 3 : undefined,
      step: key === "cfg" ? "0.1" : undefined, text: type === "textarea" ? value : undefined }));
  const form = el("form", { class: "pm-vary-form", onsubmit: (event) => {
    event.preventDefault();
    const data = new FormData(event.target), changes = {};
    for (const key of ["seed", "steps", "cfg"]) {
      const value = Number(data.get(key));
      if (String(value) !== String(p[key])) changes[key] = value;
    }
    if (data.get("prompt") !== p.prompt) changes.prompt = data.get("prompt");
    regenerate(name, changes).catch((e) => toastError("Vary", e));
  } },
  field("seed", "seed", p.seed), field("steps", "steps", p.steps), field("cfg", "cfg", p.cfg),
  field("prompt", "prompt", p.prompt, "textarea"),
  el("button", { type: "submit" }, "Queue variation"));
  state.root.querySelector(".pm-vary").replaceChildren(form);
}

async function loadWorkflow(folder, name) {
  const response = await fetch(viewUrl(folder, name));
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  const file = new File([await response.blob()], name, { type: "image/png" });
  await app.handleFile(file);
}

// Regenerate (no changes) or vary: the server builds the prompt from the sidecar (core/regenerate.py);
// it is queued like any other, into a new session folder whose sidecar names its parent.
async function regenerate(name, changes) {
  const job = await fetchJson("/prompt_media/regenerate", { folder: state.folder, name, changes });
  const response = await api.queuePrompt(0, { output: job.prompt, workflow: undefined });
  toast("success", Object.keys(changes).length ? "Variation queued" : "Regeneration queued", job.description);
  return response;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { style: { position: "fixed", opacity: 0 } });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast("success", "Copied", "A1111 parameters", 2500);
}

async function setMarks(name, change) {
  const marks = await fetchJson("/prompt_media/marks", { folder: state.folder, name, ...change });
  state.marks = marks.images;
  state.grid.setMarks(state.marks);
  if (state.current >= 0 && state.view.images[state.current].name === name) renderDetails(state.view.images[state.current]);
}

// ------------------------------------------------------------------------------- compare

async function openCompare() {
  const indexes = [...state.picked].slice(0, 6);
  const items = await Promise.all(indexes.map(async (i) => {
    const image = state.view.images[i];
    return { name: image.name, src: viewUrl(state.folder, image.name), details: await imageDetails(image.name) };
  }));
  showOverlay(compareView(items));
}

// ------------------------------------------------------------------------------- the tab

const TAB_CSS = `
.pm-gallery { position: absolute; inset: 0; display: flex; flex-direction: column; padding: 6px; box-sizing: border-box; gap: 6px; }
.pm-gallery header { display: flex; gap: 6px; align-items: center; }
.pm-gallery header .pm-title { flex: 1; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.pm-gallery button { background: #2a2a2a; color: #ddd; border: 1px solid #444; border-radius: 4px; padding: 2px 8px; cursor: pointer; font: inherit; }
.pm-gallery button:disabled { opacity: .5; cursor: default; }
.pm-sessions { overflow: auto; display: flex; flex-direction: column; gap: 4px; }
.pm-session { display: flex !important; gap: 8px; text-align: left; align-items: center; padding: 4px !important; }
.pm-session img, .pm-noimg { width: 48px; height: 48px; object-fit: cover; border-radius: 3px; flex: none; background: #333; }
.pm-session-text { display: flex; flex-direction: column; min-width: 0; }
.pm-session-text span { color: #aaa; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.pm-state.pm-running { color: #7ab4ff; } .pm-state.pm-complete { color: #8c8; } .pm-state.pm-interrupted { color: #e9b949; }
.pm-pane-session { display: flex; flex-direction: column; min-height: 0; flex: 1; gap: 6px; }
.pm-progress { color: #999; }
.pm-grid { flex: 1 1 60%; min-height: 160px; position: relative; }
.pm-grid > .pmg-scroll { position: absolute; inset: 0; height: auto; }
.pm-details:empty { display: none; }
.pm-details { flex: 0 1 40%; min-height: 0; overflow: auto; border-top: 1px solid #333; padding-top: 4px; display: flex; flex-direction: column; gap: 6px; }
.pm-details-head { display: flex; justify-content: space-between; align-items: center; }
.pm-actions { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.pm-link { color: #7ab4ff; }
.pm-vary-form { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 4px; }
.pm-vary-form label { display: flex; flex-direction: column; color: #999; }
.pm-vary-form label:nth-of-type(4) { grid-column: 1 / -1; }
.pm-vary-form input, .pm-vary-form textarea, .pm-tags input { background: #222; color: #ddd; border: 1px solid #444; border-radius: 4px; font: inherit; }
.pm-tags { display: flex; gap: 6px; align-items: center; color: #999; } .pm-tags input { flex: 1; }
.pm-empty { color: #999; }
`;

function showPane(name) {
  state.root.querySelector(".pm-pane-list").hidden = name !== "list";
  state.root.querySelector(".pm-pane-session").hidden = name !== "session";
  state.root.querySelector(".pm-back").hidden = name === "list";
  if (name === "list") {
    state.folder = null;
    state.root.querySelector(".pm-title").textContent = "Prompt Media sessions";
  }
}

function buildRoot() {
  ensureStyles();
  document.head.append(el("style", { id: "pm-gallery-styles", text: TAB_CSS }));
  const root = el("div", { class: "pmg pm-gallery", "data-testid": "pm-gallery" },
    el("header", {},
      el("button", { class: "pm-back", hidden: "", onclick: () => { showPane("list"); loadSessions(); } }, "‹ Sessions"),
      el("span", { class: "pm-title", text: "Prompt Media sessions" }),
      el("button", { title: "Refresh", onclick: () => (state.folder ? reloadSession() : loadSessions()) }, "↻")),
    el("div", { class: "pm-pane-list pm-sessions" }),
    el("div", { class: "pm-pane-session", hidden: "" },
      el("div", { class: "pm-progress" }),
      el("div", { class: "pmg-filters" }),
      el("div", { class: "pm-grid" }),
      el("div", { class: "pm-details" })));
  state.root = root;
  state.grid = new SessionGrid(root.querySelector(".pm-grid"), { thumbUrl, onSelect: selectImage });
  loadSessions();
  return root;
}

let pending = null;
function onSaved({ detail }) {
  if (!state.root?.isConnected) return;          // the tab is closed: nothing to update
  clearTimeout(pending);
  pending = setTimeout(() => {
    if (!state.folder) loadSessions();
    else if (detail?.folder === state.folder) reloadSession();
  }, REFRESH_MS);
}

// Opens the tab on a session (the OOM node's "done" status links here).
export function showSessionInGallery(folder) {
  const tabs = app.extensionManager.sidebarTab;
  if (tabs.activeSidebarTabId !== TAB_ID) tabs.toggleSidebarTab(TAB_ID);
  const open = () => (state.root ? openSession(folder) : setTimeout(open, 50));
  open();
}

app.registerExtension({
  name: "PromptMedia.Gallery",
  setup() {
    app.extensionManager.registerSidebarTab({
      id: TAB_ID,
      icon: "pi pi-images",
      title: "Prompt Media",
      tooltip: "Prompt Media sessions",
      type: "custom",
      render(container) {
        const first = !state.root;
        container.style.position = "relative";
        container.style.height = "100%";
        container.append(state.root ?? buildRoot());
        if (!first) (state.folder ? reloadSession() : loadSessions());
      },
    });
    api.addEventListener("prompt_media.saved", onSaved);
  },
});
