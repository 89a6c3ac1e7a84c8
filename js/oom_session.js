// OOM Variations node: queues a whole session ("Queue session") and shows where it stands.
// Job counts and session state come from the server (/prompt_media/session: saved, queued and
// remaining jobs); nothing about the expansion is re-implemented here.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { addButton, addStatusLine, chainCallback, fetchJson, findWidget, setStatusLine, toast, toastError }
  from "./common.js";
import { showSessionInGallery } from "./gallery.js";

const OOM_NODE = "PromptMediaOOM";
const RUN_ONE = "one job per run";
const QUEUE_LABEL = "Queue session";
const BUSY_LABEL = "Queueing…";

// The "control after generate" widget the front end links to an INT widget.
function setControl(node, name, value) {
  const control = findWidget(node, name)?.linkedWidgets?.[0];
  if (control) control.value = value;
}

async function sessionInfo(node) {
  const { output } = await app.graphToPrompt();
  return fetchJson("/prompt_media/session", { prompt: output, node_id: String(node.id) });
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// The status line for what the server says, when nothing of this node's session is being queued.
function describe(node, info) {
  node.pmSession = info;
  const { total, saved, queued, subfolder: folder } = info;
  if (queued > 0) {
    setStatusLine(node, `${saved} of ${total} saved · ${plural(queued, "job")} in the queue`);
  } else if (folder && saved >= total) {
    setStatusLine(node, `done · ${saved} of ${total} in ${folder} · show in gallery ›`, { link: folder });
  } else if (folder && saved > 0) {
    setStatusLine(node, `stopped · ${saved} of ${total} saved, ${total - saved} left · ` +
      `Queue session resumes at job ${info.next_index + 1}`);
    // Run (the front end's button) continues the session too, instead of running past its end
    findWidget(node, "job_index").value = info.next_index;
  } else {
    setStatusLine(node, info.description);
  }
}

async function refresh(node) {
  try {
    describe(node, await sessionInfo(node));
  } catch {
    // a graph that cannot be looked up now (e.g. a loader file being edited): keep the status;
    // the next Queue session press reports the problem
  }
}

// One press queues exactly the jobs of the session that are neither saved nor already in the
// queue, one prompt each (job_index set to the first, its control incrementing after each).
// While it queues, further presses do nothing and the button says so.
async function queueSession(node, button) {
  if (node.pmQueueing) return;
  node.pmQueueing = true;
  button.label = BUSY_LABEL;
  node.setDirtyCanvas(true, true);
  try {
    const info = await sessionInfo(node);
    node.pmSession = info;
    if (info.remaining <= 0) {
      toast("info", "Queue session", info.queued > 0
        ? `Every job left is already in the queue (${plural(info.queued, "job")}).`
        : `Nothing to queue: ${info.description}`);
      describe(node, info);
      return;
    }
    findWidget(node, "run").value = RUN_ONE;
    findWidget(node, "job_index").value = info.next_index;
    setControl(node, "job_index", "increment");
    setControl(node, "seed", "fixed");
    const last = info.next_index + info.remaining;
    setStatusLine(node, `queueing jobs ${info.next_index + 1}–${last} of ${info.total}`);
    await app.queuePrompt(0, info.remaining);
  } finally {
    node.pmQueueing = false;
    button.label = QUEUE_LABEL;
    node.setDirtyCanvas(true, true);
  }
}

// Nodes whose session this page is following (queued or seen running here).
const following = new Set();

function refreshFollowed() {
  for (const node of following) {
    if (!node.graph) following.delete(node);       // removed from the graph
    else if (!node.pmQueueing) refresh(node);
  }
}

app.registerExtension({
  name: "PromptMedia.OOMSession",

  setup() {
    // the saver's warnings (e.g. a contact sheet that could not be composed; images are saved)
    api.addEventListener("prompt_media.warning", ({ detail }) => toast("warn", "Prompt Media", detail?.message));
    // an emptied queue (finished, or Cancel + Clear) and an interrupt: say where each session stands
    api.addEventListener("status", ({ detail }) => {
      if (detail?.exec_info?.queue_remaining === 0) refreshFollowed();
    });
    api.addEventListener("execution_interrupted", refreshFollowed);
  },

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== OOM_NODE) return;

    chainCallback(nodeType.prototype, "onNodeCreated", function () {
      // A job index walks through the session, and the fallback seed must stay put (the front
      // end gives every input named "seed" a "randomize" control, which would start a new
      // session on every run). A saved workflow's own values still win on load.
      setControl(this, "job_index", "increment");
      setControl(this, "seed", "fixed");
      addStatusLine(this, { lines: 2, onLink: (folder) => showSessionInGallery(folder) });
      const button = addButton(this, QUEUE_LABEL, () => {
        following.add(this);
        queueSession(this, button).catch((error) => {
          toastError("Queue session", error);
          refresh(this);
        });
      });
    });

    chainCallback(nodeType.prototype, "onExecuted", function (message) {
      following.add(this);
      const text = message?.text?.[0];
      if (!text) return;
      setStatusLine(this, text);
      if (message.stopped?.[0]) toast("warn", "OOM Variations", text);   // past the session's end
    });
  },
});
