"""A1111-style LoRA tags in prompt text: ``<lora:NAME>``, ``<lora:NAME:W>``, ``<lora:NAME:WM:WC>``.

One weight sets both strengths (as A1111 does); two are the model and the CLIP strength (the
order ComfyUI's LoraLoader and the ComfyUI tag parsers use); none means 1.0. NAME may hold
spaces, dots and hyphens; it is resolved like any LoRA name (core/lora_names.py). ``lora`` is
matched in any case. A tag is removed from the text CLIP encodes (the composer then drops the
empty pieces and doubled spaces it leaves); the job applies it through the LoRA Chain.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TAG_OPEN = re.compile(r"<lora:", re.IGNORECASE)
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
WEIGHT_MIN, WEIGHT_MAX = -10.0, 10.0          # the LoRA Chain's and core LoraLoader's range
FORMS = "<lora:NAME>, <lora:NAME:WEIGHT> or <lora:NAME:MODEL:CLIP>"


@dataclass(frozen=True)
class LoraTag:
    name: str
    strength_model: float
    strength_clip: float
    text: str          # the tag as written
    start: int         # its span in the text
    end: int

    def stack_entry(self) -> dict:
        """The job's LORA_STACK entry for this tag."""
        return {"name": self.name, "strength_model": self.strength_model,
                "strength_clip": self.strength_clip, "source": "tag", "tag": self.text}


class LoraTagError(ValueError):
    """A malformed tag; ``tag`` is its text, ``offset`` where it starts."""

    def __init__(self, message: str, tag: str, offset: int):
        self.tag, self.offset = tag, offset
        super().__init__(f"LoRA tag {tag!r}: {message}")


def _weight(raw: str, tag: str, offset: int) -> float:
    value = raw.strip()
    if not NUMBER.fullmatch(value):
        raise LoraTagError(f"weight {value!r} is not a number (write {FORMS})", tag, offset)
    weight = float(value)
    if not WEIGHT_MIN <= weight <= WEIGHT_MAX:
        raise LoraTagError(f"weight {value} is outside {WEIGHT_MIN:g}..{WEIGHT_MAX:g}", tag, offset)
    return weight


def find_lora_tags(text: str) -> tuple[LoraTag, ...]:
    """Every LoRA tag in ``text``, in order; LoraTagError for the first malformed one."""
    tags = []
    pos = 0
    while (m := TAG_OPEN.search(text, pos)) is not None:
        start = m.start()
        end = text.find(">", m.end())
        reopened = text.find("<", m.end())
        if end < 0 or 0 <= reopened < end:
            stop = len(text) if reopened < 0 else reopened
            raise LoraTagError(f"no closing '>' (write {FORMS})", text[start:stop].rstrip(), start)
        tag = text[start:end + 1]
        name, *weights = text[m.end():end].split(":")
        name = name.strip()
        if not name:
            raise LoraTagError(f"the LoRA name is empty (write {FORMS})", tag, start)
        if len(weights) > 2:
            raise LoraTagError(f"{len(weights)} weights; at most two, model and CLIP (write {FORMS})", tag, start)
        values = [_weight(w, tag, start) for w in weights]
        model = values[0] if values else 1.0
        clip = values[1] if len(values) == 2 else model
        tags.append(LoraTag(name, model, clip, tag, start, end + 1))
        pos = end + 1
    return tuple(tags)


def split_lora_tags(text: str) -> tuple[str, tuple[LoraTag, ...]]:
    """(``text`` with every tag replaced by a space, the tags). A space, not nothing, so
    ``a<lora:x>b`` does not become the word ``ab``; the composer collapses the spaces."""
    tags = find_lora_tags(text)
    if not tags:
        return text, ()
    parts, pos = [], 0
    for tag in tags:
        parts += [text[pos:tag.start], " "]
        pos = tag.end
    parts.append(text[pos:])
    return "".join(parts), tags
