"""What the Prompt Media gallery shows: the sessions (newest first, with their progress), one
session as the contact sheet's grid (rows = prompts, columns = variation values, one page per
seed), an image's parameters, and the stars and tags kept beside the images.

Pure module (no ComfyUI). Sidecars are read with core.sidecar's typed reader and placed by the
contact sheet's grouping, so the grid is the contact sheet's. Reading a sidecar costs an open
and a JSON parse (about 0.1 ms), so each session folder keeps an index in memory: an unchanged
folder (same mtime) answers without being listed, and a changed one re-reads only the names that
are new or were replaced (another inode). Sidecars are published under new names, never
rewritten in place, so the index is exact.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict

from .atomic import write_json
from .contact_sheet.plan import column_labels, grid_groups
from .contact_sheet.scan import SessionImage, session_image
from .paths import PathError
from .pngmeta import a1111_parameters
from .session import NUMBERED_FILE, dated_split, folder_title
from .sidecar import GenerationParamsError, Sidecar, read_sidecar

MARKS_NAME = "stars_and_tags.json"     # one small file per session folder, beside the images
MAX_MARKS_BYTES = 1 << 20
MAX_TAGS, MAX_TAG_CHARS = 32, 64
RUNNING_SECONDS = 120                  # a folder written to this recently is taken as running
CACHED_FOLDERS = 32


class GalleryError(ValueError):
    """A request the gallery refuses; the message says what was wrong."""


def image_count(name: str) -> int | None:
    """The count of a session image name (``NNN_seed_S.png``); None for any other name."""
    m = NUMBERED_FILE.match(name) if isinstance(name, str) else None
    return int(m.group(1)) if m and name.endswith(".png") else None


# ----------------------------------------------------------------------------- one image

def image_json(image: SessionImage) -> dict:
    """What the grid and the filters know of an image (the rest is asked for on a click)."""
    width, height = image.size
    return {"name": image.name, "count": image.task_id, "seed": image.seed, "job": image.job_index,
            "seed_index": image.seed_index, "prompt_index": image.prompt_index,
            "variation_index": image.variation_index, "values": image.variation_values,
            "width": width or None, "height": height or None, "loras": list(image.loras)}


def read_image(folder: str, name: str) -> tuple[SessionImage, Sidecar]:
    """The contact sheet's record of a session image (its place from the sidecar, the size the
    sidecar states); GenerationParamsError / OSError when its sidecar cannot place it."""
    sidecar = read_sidecar(os.path.join(folder, name))
    if sidecar is None:
        raise FileNotFoundError(f"{name[:-4]}.json: vanished")
    return session_image(sidecar, name, (sidecar.width or 0, sidecar.height or 0)), sidecar


def image_details(sidecar: Sidecar, *, a1111: bool = True) -> dict:
    """Everything the gallery (and the session page) shows about one image; ``a1111``: with the
    A1111 parameters text (the tab's Copy button; the page has no use for it)."""
    p = sidecar.parameters
    oom = sidecar.oom
    guidance = p.get("guidance")
    triggers = p.get("trigger_words")
    hashes = {"model": sidecar.model_sha256, "image": sidecar.data.get("image_sha256")}
    parent = sidecar.data.get("regenerated_from")
    return {
        "name": os.path.basename(sidecar.image_path),
        "values": oom.variation_values if oom else {},
        "parameters": {"prompt": sidecar.prompt, "negative": sidecar.negative, "seed": sidecar.seed,
                       "steps": sidecar.steps, "cfg": sidecar.cfg,
                       "guidance": guidance if isinstance(guidance, (int, float)) else None,
                       "sampler": sidecar.sampler, "scheduler": sidecar.scheduler,
                       "denoise": sidecar.denoise, "width": sidecar.width, "height": sidecar.height,
                       "model": sidecar.model_name},
        "loras": [{"name": lora.name, "strength_model": lora.strength_model,
                   "strength_clip": lora.strength_clip, "sha256": lora.sha256} for lora in sidecar.loras],
        "trigger_words": [str(t) for t in triggers] if isinstance(triggers, list) else [],
        "hashes": {k: v for k, v in hashes.items() if isinstance(v, str)},
        "parent": _parent_summary(parent) if isinstance(parent, dict) else None,
        **({"a1111": a1111_parameters(p)} if a1111 else {}),
    }


def _parent_summary(parent: dict) -> dict:
    changes = parent.get("changes") if isinstance(parent.get("changes"), dict) else {}
    return {"image": str(parent.get("image") or ""),
            "changes": ", ".join(f"{k} {v}" for k, v in changes.items() if k != "prompt")
                       + (", prompt" if "prompt" in changes else "")}


# ----------------------------------------------------------------------------- a folder's index

class FolderIndex:
    """The session images of one folder, kept current by :meth:`refresh`. What a refresh found
    (the sorted images, the progress, each grid page's JSON) is kept until the next change, and a
    grid page whose images did not change is not planned again: a session that grows by one
    image costs one listing of the folder, one sidecar and one page."""

    def __init__(self, folder: str, on_read=None):
        self.folder = folder
        self.on_read = on_read          # called with each sidecar read (the page's details)
        self.mtime_ns = -1
        # png name -> (its sidecar's inode, the record or why it was skipped, the record's JSON)
        self.entries: dict[str, tuple[int, SessionImage | str, bytes]] = {}
        self.newest = 0.0
        self._view: bytes | None = None
        self._images: list[SessionImage] | None = None
        self._jobs: tuple[set, dict, dict] | None = None             # jobs, totals, sources seen
        self._pages: dict[tuple, tuple[tuple, bytes]] = {}          # group key -> (its images, JSON)
        self.lock = threading.Lock()

    def refresh(self) -> bool:
        """Re-read what changed; False when nothing did (same folder mtime)."""
        mtime_ns = os.stat(self.folder).st_mtime_ns
        if mtime_ns == self.mtime_ns:
            return False
        sidecars: dict[str, int] = {}              # name -> inode (a replaced file has a new one)
        pngs: list[str] = []
        with os.scandir(self.folder) as it:
            for entry in it:
                name = entry.name
                if name[-5:] == ".json":
                    sidecars[name] = entry.inode()
                elif name[-4:] == ".png":
                    pngs.append(name)
        entries, added = {}, []
        for name in pngs:
            key = sidecars.get(name[:-4] + ".json")
            if key is None:
                continue                       # no sidecar (yet): not an image of the session
            cached = self.entries.get(name)
            if cached is not None and cached[0] == key:
                entries[name] = cached
                continue
            if image_count(name) is None:
                continue                       # not a session image name (e.g. an upload)
            entries[name] = (key, *self._read(name))
            added.append(entries[name][1])
        removed = len(entries) - len(added) != len(self.entries)
        self._images = self._merged(added) if not removed and self._images is not None else None
        if self._images is None:
            self._jobs = None
        elif self._jobs is not None:
            self._count_jobs([r for r in added if isinstance(r, SessionImage)])
        self.entries = entries
        self.mtime_ns = mtime_ns
        self.newest = mtime_ns / 1e9
        self._view = None
        return True

    def _read(self, name: str) -> tuple[SessionImage | str, bytes]:
        try:
            image, sidecar = read_image(self.folder, name)
        except (OSError, GenerationParamsError, PathError, ValueError) as e:
            return str(e), b""
        if self.on_read is not None:
            self.on_read(name, sidecar)
        return image, compact_json(image_json(image))

    def _merged(self, added: list) -> list[SessionImage] | None:
        """The sorted images with ``added`` appended when they all come after the last one (a
        session growing); None (sort again) otherwise."""
        new = sorted((r for r in added if isinstance(r, SessionImage)), key=_order)
        old = self._images
        if not new:
            return old
        if old and _order(new[0]) <= _order(old[-1]):
            return None
        return old + new

    def images(self) -> list[SessionImage]:
        if self._images is None:
            self._images = sorted((e[1] for e in self.entries.values() if isinstance(e[1], SessionImage)),
                                  key=_order)
        return self._images

    def skipped(self) -> list[str]:
        return sorted(e[1] for e in self.entries.values() if isinstance(e[1], str))

    def _count_jobs(self, images: list[SessionImage]) -> None:
        jobs, totals, sources = self._jobs if self._jobs is not None else (set(), {}, {})
        for im in images:
            jobs.add((im.expansion_id, im.job_index if im.job_index is not None else im.task_id))
            if im.total is not None:
                totals[im.expansion_id] = im.total
            if im.source_name:
                sources[im.source_name] = None
        self._jobs = jobs, totals, sources

    def progress(self) -> tuple[int, int | None, list[str]]:
        """(jobs saved, jobs in the session(s), prompt files): a job counts once even when its
        batch made several images; several sessions in one folder add up."""
        if self._jobs is None:
            self._count_jobs(self.images())
        jobs, totals, sources = self._jobs
        return len(jobs), (sum(totals.values()) if totals else None), list(sources)

    def view(self, relative: str) -> bytes:
        """The session as the grid shows it, as JSON: {folder, title, sources, done, total,
        skipped, pages, images}. Joined from each image's and each page's own encoding."""
        if self._view is None:
            images = self.images()
            done, total, sources = self.progress()
            head = compact_json({"folder": relative, "title": folder_title(relative), "sources": sources,
                                 "done": done, "total": total, "skipped": self.skipped()})
            self._view = (head[:-1] + b',"pages":[' + b",".join(self._grid(images)) + b'],"images":['
                          + b",".join(self.entries[im.name][2] for im in images) + b"]}")
        return self._view

    def _grid(self, images: list[SessionImage]) -> list[bytes]:
        several = len({im.expansion_id for im in images}) > 1
        pages, kept = [], {}
        for group in grid_groups(images, []):
            members = (several, group.columns, *group.images.values())
            cached = self._pages.get(group.key)
            # the same record objects (records are immutable): the page is the same
            encoded = cached[1] if cached is not None and cached[0] == members else \
                compact_json(grid_page(group, several))
            kept[group.key] = (members, encoded)
            pages.append(encoded)
        self._pages = kept
        return pages


def _order(image: SessionImage) -> tuple[int, str]:
    return image.task_id, image.name


def compact_json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def grid_page(group, several: bool) -> dict:
    """One page (a seed of a session): rows = prompts, columns = variation values, each cell the
    name of its image or None; the contact sheet's grouping and column labels."""
    labels, in_cell = column_labels(group)
    rows = sorted({p for p, _ in group.images})
    prompt_of = {p: im.base_prompt for (p, _), im in sorted(group.images.items(), key=lambda kv: kv[0], reverse=True)}
    seed = group.seed
    title = f"seed {seed}" if seed is not None else f"seed #{group.key[1] + 1}"
    if several and group.source_name:
        title += f" · {group.source_name}"
    return {"title": title, "seed": seed, "columns": labels, "captions": in_cell,
            "rows": [{"prompt_index": p, "prompt": prompt_of[p],
                      "cells": [group.images[(p, c)].name if (p, c) in group.images else None
                                for c in range(group.columns)]} for p in rows]}


def grid_pages(images: list[SessionImage]) -> list[dict]:
    """Every page of a session's grid (see :func:`grid_page`)."""
    several = len({im.expansion_id for im in images}) > 1
    return [grid_page(group, several) for group in grid_groups(images, [])]


class Gallery:
    """The folder indexes of one output directory (an LRU of the most recently used)."""

    def __init__(self, output_dir: str, cached: int = CACHED_FOLDERS):
        self.output_dir = output_dir
        self.cached = cached
        self._indexes: OrderedDict[str, FolderIndex] = OrderedDict()
        self._lock = threading.Lock()

    def index(self, folder: str) -> FolderIndex:
        """The refreshed index of an absolute session folder (already confined by the caller)."""
        with self._lock:
            idx = self._indexes.pop(folder, None) or FolderIndex(folder)
            self._indexes[folder] = idx
            while len(self._indexes) > self.cached:
                self._indexes.popitem(last=False)
        with idx.lock:
            idx.refresh()
        return idx

    def relative(self, folder: str) -> str:
        return os.path.relpath(folder, self.output_dir).replace(os.sep, "/")

    def summary(self, folder: str, running: bool = False) -> dict:
        """One line of the session list. A folder already indexed answers from its index; any
        other is read cheaply: its names, and the newest sidecar for the prompt file and size."""
        idx = self._indexes.get(folder)
        if idx is not None:
            idx = self.index(folder)
            done, total, sources = idx.progress()
            images = idx.images()
            newest = idx.newest
            thumb = images[-1] if images else None
        else:
            done, total, sources, thumb, newest = _quick_summary(folder)
        if running or (total is not None and done < total and time.time() - newest < RUNNING_SECONDS):
            state = "running"
        elif total is not None and done >= total:
            state = "complete"
        else:
            state = "interrupted"
        relative = self.relative(folder)
        return {"folder": relative, "title": folder_title(relative), "sources": sources, "done": done,
                "total": total, "state": state, "thumb": thumb.name if thumb else None,
                "thumb_pixels": thumb.size[0] * thumb.size[1] if thumb else 0}


def _quick_summary(folder: str) -> tuple[int, int | None, list[str], SessionImage | None, float]:
    names = set(os.listdir(folder))
    numbered = sorted((c, n) for n in names if (c := image_count(n)) is not None and n[:-4] + ".json" in names)
    newest = os.stat(folder).st_mtime
    for _count, name in reversed(numbered):          # the newest readable sidecar describes it
        try:
            image, sidecar = read_image(folder, name)
        except (OSError, GenerationParamsError, PathError, ValueError):
            continue
        batch = sidecar.parameters.get("batch_size")
        per_job = batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 1
        return (len(numbered) // per_job, image.total, [image.source_name] if image.source_name else [],
                image, newest)
    return 0, None, [], None, newest


# ----------------------------------------------------------------------------- stars and tags

def marks_path(folder: str) -> str:
    return os.path.join(folder, MARKS_NAME)


def read_marks(folder: str) -> dict:
    """{image name: {"star": bool, "tags": [...]}}; an absent or unreadable file is no marks."""
    try:
        with open(marks_path(folder), "rb") as f:
            data = json.loads(f.read(MAX_MARKS_BYTES + 1))
    except (OSError, ValueError):
        return {}
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict):
        return {}
    out = {}
    for name, mark in images.items():
        if image_count(name) is not None and isinstance(mark, dict):
            tags = [t for t in mark.get("tags", []) if isinstance(t, str)] if isinstance(mark.get("tags"), list) else []
            out[name] = {"star": mark.get("star") is True, "tags": tags}
    return out


_marks_lock = threading.Lock()


def update_marks(folder: str, name: str, *, star: bool | None = None, tags: list | None = None) -> dict:
    """Set an image's star and/or tags and write the folder's marks file atomically (a temp
    file renamed over it); never touches an image or a sidecar. Returns every mark."""
    if image_count(name) is None or not os.path.isfile(os.path.join(folder, name)):
        raise GalleryError(f"{name!r} is not an image of this session")
    if star is not None and not isinstance(star, bool):
        raise GalleryError("star must be true or false")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise GalleryError("tags must be a list of text")
        tags = list(dict.fromkeys(" ".join(t.split()) for t in tags if t.strip()))
        if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in tags):
            raise GalleryError(f"at most {MAX_TAGS} tags of at most {MAX_TAG_CHARS} characters")
    with _marks_lock:
        marks = read_marks(folder)
        mark = marks.get(name, {"star": False, "tags": []})
        if star is not None:
            mark["star"] = star
        if tags is not None:
            mark["tags"] = tags
        if mark["star"] or mark["tags"]:
            marks[name] = mark
        else:
            marks.pop(name, None)
        write_json(marks_path(folder), {"version": 1, "images": dict(sorted(marks.items()))}, replace=True)
    return marks


# ----------------------------------------------------------------------------- where sessions are

def session_roots(output_dir: str, default: str, depth: int = 3) -> list[str]:
    """The saver roots in use under ``output_dir`` ('/'-separated): ``default`` plus every folder
    (down to ``depth`` levels) holding the session state a saver keeps (``.prompt_media/``).
    Dated folders and hidden folders are not entered."""
    found = [default]

    def walk(path: str, rel: str, level: int) -> None:
        try:
            entries = [e for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        names = {e.name for e in entries}
        if rel and ".prompt_media" in names and rel not in found:
            found.append(rel)
        if level < depth:
            for e in entries:
                if not e.name.startswith(".") and not e.name.isdigit():
                    walk(e.path, f"{rel}/{e.name}" if rel else e.name, level + 1)

    walk(output_dir, "", 0)
    return found


def newest_first(folders: list[str]) -> list[str]:
    """Relative session folders of several roots, newest session first (by their dated part)."""
    def key(rel: str) -> str:
        split = dated_split(rel)
        return "".join(split[1]) if split else ""
    return sorted(folders, key=key, reverse=True)
