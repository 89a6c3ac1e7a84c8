// OOM Variations node: shows the job status the server reports and queues a whole session.
// Job counts and session state come from the server (/prompt_media/session); nothing about the
// expansion is re-implemented here.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const OOM_NODE = "PromptMediaOOM";
const RUN_ONE = "one job per run";

function addStatusWidget(node) {
  const widget = {
    name: "pm_status",
    type: "pm_status",
    value: "",
    serialize: false,             // not in the saved workflow's widgets_values
    options: { serialize: false }, // not in the API prompt
    draw(ctx, _node, width, y, height) {
      if (!this.value) return;
      ctx.save();
      ctx.fillStyle = "#9ab";
      ctx.font = "12px sans-serif";
      ctx.fillText(this.value, 12, y + height * 0.7, width - 24);
      ctx.restore();
    },
    computeSize(width) {
      return [width, 22];
    },
  };
  node.addCustomWidget(widget);
  return widget;
}

function setStatus(node, text) {
  const widget = node.widgets?.find((w) => w.name === "pm_status");
  if (widget) widget.value = text;
  node.setDirtyCanvas(true, true);
}

function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

// The "control after generate" widget the front end links to an INT widget.
function setControl(node, name, value) {
  const control = widget(node, name)?.linkedWidgets?.[0];
  if (control) control.value = value;
}

// Ask the server where the session of this node stands, then queue exactly the remaining jobs,
// one prompt each: job_index is set to the next job and its control increments after each queue.
async function queueSession(node) {
  const { output } = await app.graphToPrompt();
  const response = await api.fetchApi("/prompt_media/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: output, node_id: String(node.id) }),
  });
  const info = await response.json();
  if (!response.ok) {
    setStatus(node, info.error ?? `session lookup failed (${response.status})`);
    return;
  }
  if (info.remaining <= 0) {
    setStatus(node, `session complete: ${info.description}`);
    return;
  }
  widget(node, "run").value = RUN_ONE;
  widget(node, "job_index").value = info.next_index;
  setControl(node, "job_index", "increment");
  setControl(node, "seed", "fixed");
  setStatus(node, `queueing jobs ${info.next_index + 1}..${info.total} · ${info.description}`);
  await app.queuePrompt(0, info.remaining);
}

app.registerExtension({
  name: "PromptMedia.OOMSession",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== OOM_NODE) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      // A job index walks through the session, and the fallback seed must stay put (the front
      // end gives every input named "seed" a "randomize" control, which would start a new
      // session on every run). A saved workflow's own values still win on load.
      setControl(this, "job_index", "increment");
      setControl(this, "seed", "fixed");
      addStatusWidget(this);
      const button = this.addWidget("button", "Queue session", null, () => {
        queueSession(this).catch((error) => setStatus(this, String(error)));
      });
      button.serialize = false;
      button.options = { ...(button.options ?? {}), serialize: false };
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text?.[0];
      if (text) setStatus(this, text);
    };
  },
});
