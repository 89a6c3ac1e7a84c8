// The session list of Session Contact Sheet and the sidecar list of Load Generation Params stay
// current without a page reload (re-read from the server's /object_info when an image is saved and
// when the node is clicked), and show the part of a long path that tells entries apart
// ("2026-12-03 10:07 · 012_seed_2" instead of "collections/images/2026/12/…").
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { chainCallback, fetchJson, findWidget } from "./common.js";

const LISTS = { PromptMediaContactSheet: "session", PromptMediaLoadParams: "image" };
const DEFAULT_ROOT = "collections/images";
const DATED = /^(?:(.*)\/)?(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})(\d{2})(?:\/([^/]+))?$/;
const REFRESH_MS = 1500;

// "collections/images/2026/12/03/1007/012_seed_2.json" -> "2026-12-03 10:07 · 012_seed_2";
// another root is named first ("cli/runs: 2026-12-03 10:07"); anything else is left as it is.
export function shortLabel(value) {
  const m = DATED.exec(String(value ?? ""));
  if (!m) return value;
  const [, root, y, mo, d, h, mi, file] = m;
  const where = root && root !== DEFAULT_ROOT ? `${root}: ` : "";
  return `${where}${y}-${mo}-${d} ${h}:${mi}${file ? ` · ${file.replace(/\.json$/, "")}` : ""}`;
}

const lastRefresh = {};

async function refresh(classType) {
  lastRefresh[classType] = Date.now();
  const name = LISTS[classType];
  let values;
  try {
    values = (await fetchJson(`/object_info/${classType}`))?.[classType]?.input?.required?.[name]?.[0];
  } catch {
    return;                 // the server is busy or restarting: the next event refreshes
  }
  if (!Array.isArray(values)) return;
  for (const node of app.graph?._nodes ?? []) {
    const widget = node.type === classType ? findWidget(node, name) : null;
    if (widget) {
      widget.options.values = values;
      node.setDirtyCanvas(true, true);
    }
  }
}

let pending = null;

app.registerExtension({
  name: "PromptMedia.SessionLists",
  setup() {
    api.addEventListener("prompt_media.saved", () => {
      clearTimeout(pending);
      pending = setTimeout(() => Object.keys(LISTS).forEach(refresh), REFRESH_MS);
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const name = LISTS[nodeData.name];
    if (!name) return;
    chainCallback(nodeType.prototype, "onNodeCreated", function () {
      const widget = findWidget(this, name);
      if (widget) Object.defineProperty(widget, "_displayValue", { get: () => shortLabel(widget.value), configurable: true });
    });
    // sessions made elsewhere (the CLI on another server, a copied folder): a click looks again
    chainCallback(nodeType.prototype, "onMouseDown", function () {
      if (Date.now() - (lastRefresh[nodeData.name] ?? 0) > REFRESH_MS) refresh(nodeData.name);
    });
  },
});
