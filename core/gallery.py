"""What the Prompt Media gallery shows: the sessions (newest first, with their progress), one
session as the contact sheet's grid (rows = prompts, columns = variation values, one page per
seed), an image's parameters, and the stars and tags kept beside the images.

Pure module (no ComfyUI). Sidecars are read with core.sidecar's typed reader and placed by the
contact sheet's grouping, so the grid is the contact sheet's. Reading a sidecar costs an open
and a strict parse (0.3-0.7 ms), so each session folder keeps an index in memory: an unchanged
folder (same mtime) answers without being listed, and a changed one re-reads only the names that
are new or were replaced (another inode). Sidecars are published under new names, never
rewritten in place, so the index is exact.

The index also lives on disk (core/gallery_index.py), so the first listing after a start does
not read ten thousand sidecars again: each image's record keyed by its sidecar's inode, size and
mtime_ns (a sidecar changed or added since is read again, one gone is dropped), and the finished
grid, used as it is while every key still matches. It is written atomically, a while after the
last change (never on the path of a request), and by the session page.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict

from .atomic import replace_bytes, write_json
from .contact_sheet.plan import column_labels, grid_groups
from .contact_sheet.scan import SessionImage, session_image
from .gallery_index import (
    BY_FD,
    FolderListing,
    Key,
    StoredIndex,
    encode_rows,
    index_header,
    read_index_file,
    stored_entries,
)
from .paths import PathError
from .pngmeta import a1111_parameters
from .session import dated_split, folder_title, gallery_index_path, image_count
from .sidecar import GenerationParamsError, Sidecar, read_sidecar

log = logging.getLogger(__name__)

MARKS_NAME = "stars_and_tags.json"     # one small file per session folder, beside the images
MAX_MARKS_BYTES = 1 << 20
MAX_TAGS, MAX_TAG_CHARS = 32, 64
RUNNING_SECONDS = 120                  # a folder written to this recently is taken as running
CACHED_FOLDERS = 32
SAVE_DELAY = 10.0                      # seconds after a change before the index file is written


class GalleryError(ValueError):
    """A request the gallery refuses; the message says what was wrong."""


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
    image costs one listing of the folder, one sidecar and one page.

    With an ``index_file`` the first refresh stats every sidecar and takes what the file holds
    for each unchanged one; when nothing changed at all it answers with the file's grid and
    progress, and builds the records from the file only when they are needed (the folder
    changes, or a caller asks for the images)."""

    def __init__(self, folder: str, on_read=None, index_file: str | None = None):
        self.folder = folder
        self.on_read = on_read          # called with each sidecar read (the page's details)
        self.index_file = index_file    # where the index is kept on disk; None: memory only
        self.mtime_ns = -1
        # png name -> (its sidecar's key, the record or why it was skipped, the record's JSON)
        self.entries: dict[str, tuple[Key, SessionImage | str, bytes]] = {}
        self.newest = 0.0
        self._changes = self._saved = 0    # changes to the records, and the count last written
        self._stored: StoredIndex | None = None      # the file's answer, while no record is needed
        self._view: tuple[str, bytes] | None = None  # (relative folder, the view's JSON)
        self._body: bytes | None = None              # the view without its head: pages and images
        self._images: list[SessionImage] | None = None
        self._jobs: tuple[set, dict, dict] | None = None             # jobs, totals, sources seen
        self._pages: dict[tuple, tuple[tuple, bytes]] = {}          # group key -> (its images, JSON)
        self._save_timer: threading.Timer | None = None
        self.lock = threading.Lock()

    def refresh(self) -> bool:
        """Re-read what changed; False when nothing did (same folder mtime)."""
        mtime_ns = os.stat(self.folder).st_mtime_ns
        if mtime_ns == self.mtime_ns:
            return False
        fd = os.open(self.folder, os.O_RDONLY) if BY_FD else None
        try:            # by descriptor: a sidecar's stat needs no lookup of the folder's path
            return self._update(mtime_ns, FolderListing(self.folder, fd))
        finally:
            if fd is not None:
                os.close(fd)

    def _update(self, mtime_ns: int, folder: FolderListing) -> bool:
        keys: dict[str, Key] = {}
        if self._stored is not None:
            self._unpack()
        if self.mtime_ns == -1 and self.index_file is not None and self.on_read is None:
            # first look with an index file: the sidecars' keys decide what the file gives
            pngs, keys = folder.keyed()
            inodes = {name[:-4] + ".json": key[0] for name, key in keys.items()}
            stored = read_index_file(self.index_file)
            if stored is not None and stored.keys == keys:
                self._stored = stored                 # nothing changed since it was written
                self._mark_changed(mtime_ns)
                return True
            if stored is not None:                    # some changed: take the others, rewrite it
                self.entries, self._pages = stored_entries(stored, keys, self.folder)
                self._changes += 1
        else:
            pngs, inodes = folder.listed()
        entries, added = {}, []
        for name in pngs:
            inode = inodes.get(name[:-4] + ".json")
            if inode is None:
                continue                       # no sidecar (yet): not an image of the session
            cached = self.entries.get(name)
            if cached is not None and cached[0][0] == inode:
                entries[name] = cached
                continue
            if image_count(name) is None:
                continue                       # not a session image name (e.g. an upload)
            key = keys.get(name) or folder.key(name[:-4] + ".json")     # taken before the read: never newer
            entries[name] = (key, *self._read(name))
            added.append(entries[name][1])
        removed = len(entries) - len(added) != len(self.entries)
        self._images = self._merged(added) if not removed and self._images is not None else None
        if self._images is None:
            self._jobs = None
        elif self._jobs is not None:
            self._count_jobs([r for r in added if isinstance(r, SessionImage)])
        if added or removed:
            self._changes += 1
        self.entries = entries
        self._mark_changed(mtime_ns)
        return True

    def _mark_changed(self, mtime_ns: int) -> None:
        self.mtime_ns = mtime_ns
        self.newest = mtime_ns / 1e9
        self._view = self._body = None

    def _unpack(self) -> None:
        """The records from the stored index (whose keys matched the folder when it was read)."""
        stored, self._stored = self._stored, None
        self.entries, self._pages = stored_entries(stored, stored.keys, self.folder)
        self._images = self._jobs = None

    def _records(self) -> None:
        if self._stored is not None:
            self._unpack()
            self.mtime_ns = -2                 # list again: a record the file lacked is read
            self.refresh()

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
        self._records()
        if self._images is None:
            self._images = sorted((e[1] for e in self.entries.values() if isinstance(e[1], SessionImage)),
                                  key=_order)
        return self._images

    def skipped(self) -> list[str]:
        if self._stored is not None:
            return self._stored.view["skipped"]
        return sorted(e[1] for e in self.entries.values() if isinstance(e[1], str))

    def thumb(self) -> tuple[str, int] | None:
        """The newest image's name and pixel count (the session list's thumbnail)."""
        if self._stored is not None:
            thumb = self._stored.view["thumb"]
            return (thumb[0], thumb[1]) if thumb else None
        images = self.images()
        return (images[-1].name, images[-1].size[0] * images[-1].size[1]) if images else None

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
        if self._stored is not None:
            view = self._stored.view
            return view["done"], view["total"], view["sources"]
        if self._jobs is None:
            self._count_jobs(self.images())
        jobs, totals, sources = self._jobs
        return len(jobs), (sum(totals.values()) if totals else None), list(sources)

    def view(self, relative: str) -> bytes:
        """The session as the grid shows it, as JSON: {folder, title, sources, done, total,
        skipped, pages, images}. Joined from each image's and each page's own encoding."""
        if self._view is None or self._view[0] != relative:
            done, total, sources = self.progress()
            head = compact_json({"folder": relative, "title": folder_title(relative), "sources": sources,
                                 "done": done, "total": total, "skipped": self.skipped()})
            self._view = relative, head[:-1] + b"," + self.body() + b"}"
        return self._view[1]

    def body(self) -> bytes:
        """The view's pages and images: ``"pages":[...],"images":[...]``."""
        if self._stored is not None:
            return self._stored.body
        if self._body is None:
            images = self.images()
            self._body = (b'"pages":[' + b",".join(self._grid(images)) + b'],"images":['
                          + b",".join(self.entries[im.name][2] for im in images) + b"]")
        return self._body

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

    # ------------------------------------------------------------------------- on disk

    @property
    def dirty(self) -> bool:
        """The records changed since the index file was read or written."""
        return self._changes != self._saved

    def save(self) -> bool:
        """Write the index file (atomically) when the records changed since it was read or
        written; False when there was nothing to write or it could not be written (a lost
        index only costs reading the sidecars again)."""
        return self._write(self._contents())

    def _contents(self) -> tuple[int, bytes, dict, list, dict, bytes] | None:
        """What the file will hold (taken under the lock; encoded and written outside it: a
        refresh only ever replaces these objects, never changes them)."""
        if self.index_file is None or not self.dirty or self._stored is not None:
            return None
        body = self.body()
        done, total, sources = self.progress()
        header = index_header({name: e[0] for name, e in self.entries.items()},
                              {"done": done, "total": total, "sources": sources, "skipped": self.skipped(),
                               "thumb": self.thumb(), "bytes": len(body)})
        return self._changes, compact_json(header), self.entries, self.images(), self._pages, body

    def _write(self, contents) -> bool:
        if contents is None:
            return False
        changes, header, entries, images, pages, body = contents
        try:
            rows = encode_rows(entries, images, pages, body)
            data = header + b"\n" + body + b"\n" + compact_json(rows) + b"\n"
            os.makedirs(os.path.dirname(self.index_file), exist_ok=True)
            replace_bytes(data, self.index_file, durable=False)      # a lost index is only slower
        except OSError as e:
            log.warning("[Prompt Media] cannot write the gallery index %s: %s", self.index_file, e)
            return False
        self._saved = changes
        return True

    def save_later(self, delay: float = SAVE_DELAY) -> None:
        """Write the index file ``delay`` seconds from now (once, however many changes come
        meanwhile; a running session's index is not rewritten after every image), encoding it
        outside the lock so that no request waits for it."""
        if self.index_file is None or self._save_timer is not None:
            return
        self._save_timer = threading.Timer(delay, self._timed_save)
        self._save_timer.daemon = True
        self._save_timer.start()

    def _timed_save(self) -> None:
        with self.lock:
            self._save_timer = None
            contents = self._contents()
        self._write(contents)


def _order(image: SessionImage) -> tuple[int, str]:
    return image.task_id, image.name


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))   # one encoder: 2x faster than dumps()


def compact_json(value) -> bytes:
    return _COMPACT.encode(value).encode("utf-8")


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

    def __init__(self, output_dir: str, cached: int = CACHED_FOLDERS, *, stored: bool = True,
                 save_delay: float = SAVE_DELAY):
        self.output_dir = output_dir
        self.cached = cached
        self.stored = stored            # keep each session's index on disk too (see FolderIndex)
        self.save_delay = save_delay
        self._indexes: OrderedDict[str, FolderIndex] = OrderedDict()
        self._lock = threading.Lock()

    def index(self, folder: str) -> FolderIndex:
        """The refreshed index of an absolute session folder (already confined by the caller)."""
        with self._lock:
            idx = self._indexes.pop(folder, None) or \
                FolderIndex(folder, index_file=gallery_index_path(folder) if self.stored else None)
            self._indexes[folder] = idx
            while len(self._indexes) > self.cached:
                self._indexes.popitem(last=False)
        with idx.lock:
            idx.refresh()
            if idx.dirty:
                idx.save_later(self.save_delay)
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
            newest = idx.newest
            thumb = idx.thumb()
        else:
            done, total, sources, image, newest = _quick_summary(folder)
            thumb = (image.name, image.size[0] * image.size[1]) if image else None
        if running or (total is not None and done < total and time.time() - newest < RUNNING_SECONDS):
            state = "running"
        elif total is not None and done >= total:
            state = "complete"
        else:
            state = "interrupted"
        relative = self.relative(folder)
        return {"folder": relative, "title": folder_title(relative), "sources": sources, "done": done,
                "total": total, "state": state, "thumb": thumb[0] if thumb else None,
                "thumb_pixels": thumb[1] if thumb else 0}


def _quick_summary(folder: str) -> tuple[int, int | None, list[str], SessionImage | None, float]:
    names = set(os.listdir(folder))
    numbered = sorted((c, n) for n in names if n[-4:] == ".png" and n[:-4] + ".json" in names
                      and (c := image_count(n)) is not None)
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
