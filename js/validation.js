// Errors once, on the input at fault. ComfyUI reports a VALIDATE_INPUTS message once per input
// that the function names (execution.py, validate_inputs: one error per key it was given), so a
// bad YAML file appeared three times on the loader and a missing LoRA six times on the LoRA
// Chain. Before the front end shows a refused prompt, the identical messages of one of our nodes
// become one, attached to the input at fault (a LoRA row has no input slot: its widget turns red).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { findWidget } from "./common.js";

const OUR_CLASS = /^PromptMedia/;
const INLINE_SOURCE = "prompt_media.yaml";     // the name the loader gives inline yaml_text

const filled = (node, name) => String(findWidget(node, name)?.value ?? "").trim() !== "";

// The input a message is about, among `names` (the inputs ComfyUI repeated it for).
function inputAtFault(node, classType, text, names) {
  const row = /\b(lora_\d+)\b/.exec(text)?.[1];
  const rules = {
    PromptMediaLoader: () => (text.startsWith(INLINE_SOURCE) || filled(node, "yaml_text") ? "yaml_text"
      : /\bpreset\b/.test(text.slice(0, 80)) ? "preset" : "file"),
    PromptMediaLoraChain: () => row ?? (/\.ya?ml\b/.test(text) ? "lora_stack" : "strength_mode"),
    PromptMediaContactSheet: () => (filled(node, "folder") ? "folder" : "session"),
    PromptMediaLoadParams: () => (filled(node, "path") ? "path" : "image"),
  };
  const wanted = node ? rules[classType]?.() : undefined;
  return names.includes(wanted) ? wanted : (row && classType === "PromptMediaLoraChain" ? row : names[0]);
}

// In place: each of our nodes keeps one custom_validation_failed error per distinct message.
export function reportOnce(nodeErrors) {
  for (const [id, entry] of Object.entries(nodeErrors ?? {})) {
    if (!OUR_CLASS.test(entry?.class_type ?? "") || !Array.isArray(entry.errors)) continue;
    const node = app.graph?.getNodeById(Number(id)) ?? app.graph?.getNodeById(id);
    const others = [], byText = new Map();
    for (const error of entry.errors) {
      const input = error.extra_info?.input_name;
      if (error.type !== "custom_validation_failed" || !input) { others.push(error); continue; }
      const text = String(error.details ?? "").replace(`${input} - `, "");
      if (!byText.has(text)) byText.set(text, []);
      byText.get(text).push(error);
    }
    entry.errors = [...others, ...[...byText].map(([text, group]) => {
      const input = inputAtFault(node, entry.class_type, text, group.map((e) => e.extra_info.input_name));
      return { ...group[0], details: `${input} - ${text}`, extra_info: { ...group[0].extra_info, input_name: input } };
    })];
  }
  return nodeErrors;
}

// The error of the last refused prompt for one input of a node (LoRA rows draw themselves red).
export function lastErrorFor(node, inputName) {
  return app.lastNodeErrors?.[node.id]?.errors?.find((e) => e.extra_info?.input_name === inputName);
}

app.registerExtension({
  name: "PromptMedia.Validation",
  setup() {
    const queuePrompt = api.queuePrompt;
    api.queuePrompt = async function (...args) {
      try {
        const response = await queuePrompt.apply(this, args);
        reportOnce(response?.node_errors);
        return response;
      } catch (error) {
        reportOnce(error?.response?.node_errors);
        throw error;
      }
    };
  },
});
