"""Reading a posted API prompt: ``{node_id: {"class_type": ..., "inputs": {...}}}``.

An input is either a constant (a widget value) or a link ``[node_id, output_index]``. Every
place that reads a prompt (the saver's sidecar, the session route, the LoRA Chain's pre-queue
YAML check, the CLI's workflow handling) uses these helpers, so a link, a constant and a core
primitive node mean the same thing everywhere. Pure Python; tolerant of malformed graphs (what
cannot be read is None, never an exception).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Core primitive nodes: a link from one of them is as good as a widget constant.
PRIMITIVE_CLASSES = frozenset({"PrimitiveInt", "PrimitiveFloat", "PrimitiveString",
                               "PrimitiveStringMultiline", "PrimitiveBoolean"})
MAX_HOPS = 256            # upstream search bound (graphs are small; cycles are impossible but cheap to guard)

# Our node classes, as they appear in a prompt.
LOADER_CLASS = "PromptMediaLoader"
OOM_CLASS = "PromptMediaOOM"
SAVER_CLASS = "PromptMediaSessionSaver"
CHAIN_CLASS = "PromptMediaLoraChain"
LOADER_SOURCE_INPUTS = ("file", "yaml_text", "preset")
# Output names (RETURN_NAMES) of the loader and the OOM node; new outputs go at the end so saved
# links keep their indexes.
LOADER_OUTPUTS = ("prompt_media", "lora_stack", "negative", "steps", "cfg", "width", "height",
                  "sampler_name", "scheduler", "denoise", "summary", "guidance", "model_name")
OOM_OUTPUTS = ("positive", "seed", "job", "job_count", "lora_stack")
# Outputs that carry one of the job's values (same name as the job key): a sampler input linked
# to one of them used exactly the job's value.
JOB_VALUE_KEYS = frozenset({"positive", "seed", "negative", "steps", "cfg", "width", "height",
                            "sampler_name", "scheduler", "denoise", "guidance", "model_name"})
JOB_OUTPUTS = {cls: {i: name for i, name in enumerate(names) if name in JOB_VALUE_KEYS}
               for cls, names in ((LOADER_CLASS, LOADER_OUTPUTS), (OOM_CLASS, OOM_OUTPUTS))}


@dataclass(frozen=True)
class Linked:
    """The value arrives through a link: node ``node_id``'s output ``output_index``."""
    node_id: str
    output_index: int
    class_type: str | None

    def __str__(self) -> str:
        return f"linked from node {self.node_id} ({self.class_type}) output {self.output_index}"


def parse_link(raw: Any) -> tuple[str, int] | None:
    """``[node_id, output_index]`` -> (str id, index); anything else (a constant) -> None."""
    if (isinstance(raw, (list, tuple)) and len(raw) == 2 and isinstance(raw[0], (str, int))
            and not isinstance(raw[0], bool) and isinstance(raw[1], int) and not isinstance(raw[1], bool)):
        return str(raw[0]), raw[1]
    return None


def get_node(prompt: Any, node_id: Any) -> dict | None:
    """The node ``node_id`` when it is a well-formed node dict, else None."""
    if not isinstance(prompt, dict) or node_id is None:
        return None
    node = prompt.get(str(node_id))
    return node if isinstance(node, dict) and isinstance(node.get("inputs", {}), dict) else None


def node_inputs(node: dict | None) -> dict:
    return (node or {}).get("inputs") or {}


def class_of(node: dict | None) -> str | None:
    cls = (node or {}).get("class_type")
    return cls if isinstance(cls, str) else None


def value(prompt: dict, raw: Any) -> Any:
    """A constant, a constant read through a core primitive node, or a :class:`Linked` marker."""
    link = parse_link(raw)
    if link is None:
        return raw
    node = get_node(prompt, link[0])
    cls = class_of(node)
    inputs = node_inputs(node)
    if cls in PRIMITIVE_CLASSES and "value" in inputs and parse_link(inputs["value"]) is None:
        return inputs["value"]
    return Linked(link[0], link[1], cls)


def input_value(prompt: dict, node: dict | None, name: str, default: Any = None) -> Any:
    """The value of input ``name`` of ``node`` (see :func:`value`); ``default`` when absent."""
    inputs = node_inputs(node)
    return value(prompt, inputs[name]) if name in inputs else default


def constant_inputs(prompt: dict, node: dict | None, names: Iterable[str],
                    defaults: dict | None = None) -> dict | None:
    """``{name: constant}`` for ``names`` (absent ones take ``defaults`` or None); None when any
    of them is linked to a node that only knows its value when it runs."""
    defaults = defaults or {}
    out = {}
    for name in names:
        v = input_value(prompt, node, name, defaults.get(name))
        if isinstance(v, Linked):
            return None
        out[name] = v
    return out


def source_of(prompt: dict, node: dict | None, name: str) -> tuple[str, int, dict] | None:
    """The node feeding input ``name``: (node id, output index, node), or None when the input is
    a constant, absent, or linked to a node that is not in the prompt."""
    link = parse_link(node_inputs(node).get(name))
    if link is None:
        return None
    found = get_node(prompt, link[0])
    return (link[0], link[1], found) if found is not None else None


def nodes_of_class(prompt: Any, *classes: str) -> list[tuple[str, dict]]:
    """(id, node) of every node whose class is one of ``classes``, in the prompt's order."""
    if not isinstance(prompt, dict):
        return []
    return [(str(k), n) for k, n in prompt.items()
            if isinstance(n, dict) and n.get("class_type") in classes and isinstance(n.get("inputs", {}), dict)]


def links_from(prompt: Any, node_id: str, output_index: int | None = None) -> list[tuple[str, str, dict]]:
    """(consumer id, input name, consumer node) of every input linked to ``node_id`` (only its
    output ``output_index`` when given), in the prompt's order."""
    out = []
    for cid, node in _all_nodes(prompt):
        for name, raw in node_inputs(node).items():
            link = parse_link(raw)
            if link is not None and link[0] == str(node_id) and output_index in (None, link[1]):
                out.append((cid, name, node))
    return out


def consumers(prompt: Any, node_id: str, *, input_name: str | None = None,
              class_type: str | None = None) -> list[tuple[str, dict]]:
    """(id, node) of nodes with an input linked to ``node_id`` (optionally only input
    ``input_name``, only class ``class_type``), in the prompt's order, each once."""
    out: dict[str, dict] = {}
    for cid, name, node in links_from(prompt, node_id):
        if input_name in (None, name) and class_type in (None, class_of(node)):
            out.setdefault(cid, node)
    return list(out.items())


def _all_nodes(prompt: Any) -> Iterator[tuple[str, dict]]:
    if isinstance(prompt, dict):
        for k, n in prompt.items():
            if isinstance(n, dict) and isinstance(n.get("inputs", {}), dict):
                yield str(k), n


def of_class(*classes: str) -> Callable[[dict], bool]:
    wanted = set(classes)
    return lambda node: node.get("class_type") in wanted


def upstream(prompt: dict, start: Any, match: Callable[[dict], bool],
             follow: Iterable[str] | None = None) -> tuple[str, dict] | None:
    """Breadth-first from link ``start`` to the nearest node for which ``match(node)`` holds;
    ``follow`` limits which inputs are walked (None: all linked inputs). (id, node) or None."""
    first = parse_link(start)
    if first is None:
        return None
    follow = None if follow is None else set(follow)
    queue, seen = deque([first[0]]), set()
    while queue and len(seen) < MAX_HOPS:
        node_id = queue.popleft()
        if node_id in seen:
            continue
        seen.add(node_id)
        node = get_node(prompt, node_id)
        if node is None:
            continue
        if match(node):
            return node_id, node
        for name, raw in node_inputs(node).items():
            if follow is not None and name not in follow:
                continue
            link = parse_link(raw)
            if link is not None:
                queue.append(link[0])
    return None


def loader_source(prompt: dict, loader: dict | None) -> tuple[str, str, str] | None:
    """(file, yaml_text, preset) of a Prompt Media Loader node, for checks made before the queue
    starts; None when any of them is linked to a node that knows it only when it runs."""
    found = constant_inputs(prompt, loader, LOADER_SOURCE_INPUTS, dict.fromkeys(LOADER_SOURCE_INPUTS, ""))
    return None if found is None else tuple(found[name] for name in LOADER_SOURCE_INPUTS)
