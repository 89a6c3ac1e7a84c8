// OOM Variations node: shows the job status the server reports and queues a whole session.
// Job counts and session state come from the server (/prompt_media/session); nothing about the
// expansion is re-implemented here.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { addButton, addStatusLine, chainCallback, fetchJson, findWidget, setStatusLine, toast, toastError }
  from "./common.js";

const OOM_NODE = "PromptMediaOOM";
const RUN_ONE = "one job per run";

// The "control after generate" widget the front end links to an INT widget.
function setControl(node, name, value) {
  const control = findWidget(node, name)?.linkedWidgets?.[0];
  if (control) control.value = value;
}

// Ask the server where the session of this node stands, then queue exactly the remaining jobs,
// one prompt each: job_index is set to the next job and its control increments after each queue.
async function queueSession(node) {
  const { output } = await app.graphToPrompt();
  const info = await fetchJson("/prompt_media/session", { prompt: output, node_id: String(node.id) });
  if (info.remaining <= 0) {
    toast("info", "Session complete", info.description);
    return;
  }
  findWidget(node, "run").value = RUN_ONE;
  findWidget(node, "job_index").value = info.next_index;
  setControl(node, "job_index", "increment");
  setControl(node, "seed", "fixed");
  setStatusLine(node, `queueing jobs ${info.next_index + 1}..${info.total} · ${info.description}`);
  await app.queuePrompt(0, info.remaining);
}

app.registerExtension({
  name: "PromptMedia.OOMSession",
  setup() {
    // the saver's warnings (e.g. a contact sheet that could not be composed; images are saved)
    api.addEventListener("prompt_media.warning", ({ detail }) => toast("warn", "Prompt Media", detail?.message));
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== OOM_NODE) return;

    chainCallback(nodeType.prototype, "onNodeCreated", function () {
      // A job index walks through the session, and the fallback seed must stay put (the front
      // end gives every input named "seed" a "randomize" control, which would start a new
      // session on every run). A saved workflow's own values still win on load.
      setControl(this, "job_index", "increment");
      setControl(this, "seed", "fixed");
      addStatusLine(this);
      addButton(this, "Queue session", () => {
        queueSession(this).catch((error) => toastError("Queue session", error));
      });
    });

    chainCallback(nodeType.prototype, "onExecuted", function (message) {
      const text = message?.text?.[0];
      if (text) setStatusLine(this, text);
    });
  },
});
