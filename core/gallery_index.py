"""The gallery's index of a session folder on disk: ``<root>/.prompt_media/gallery/YYYY-MM-DD-HHMM.index``
(:func:`core.session.gallery_index_path`), so that the first listing after a start reads only
the sidecars added or changed since it was written (core.gallery.FolderIndex uses it).

One file, three parts:

1. a JSON line: format, version, the code version, each image's sidecar key ``[inode, size,
   mtime_ns]`` by image name, and the grid's progress (done, total, sources, skipped, thumb) and
   byte count;
2. the grid itself (FolderIndex.body: ``"pages":[...],"images":[...]``), answered as it is while
   every key matches;
3. a JSON line of the records: each image's row (ints only: where its JSON is in the grid, its
   numbers, and indexes into tables of the prompts, values and LoRAs a session repeats), each
   skipped image's reason, and each grid page's images, parsed only when a record is needed.

A file that is unreadable, truncated, not ours or written by other code (:func:`code_version`)
is ignored; a malformed row or page only costs reading that sidecar or planning that page.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from typing import NamedTuple

from .contact_sheet.scan import SessionImage
from .session import image_count

log = logging.getLogger(__name__)

INDEX_FORMAT = "prompt-media-gallery-index"
INDEX_VERSION = 1
MAX_INDEX_BYTES = 512 << 20            # ~50 KB per image would be absurd: not ours

Key = list          # a sidecar's [inode, size, mtime_ns]

BY_FD = os.scandir in os.supports_fd and os.stat in os.supports_dir_fd     # POSIX


class FolderListing:
    """Listing a session folder (by descriptor where the OS can)."""

    def __init__(self, path: str, fd: int | None):
        self.path, self.fd = path, fd

    def listed(self) -> tuple[list[str], dict[str, int]]:
        """(the .png names, each .json name's inode): one directory read, no stat."""
        pngs, inodes = [], {}
        with os.scandir(self.path if self.fd is None else self.fd) as it:
            for entry in it:
                name = entry.name
                if name[-5:] == ".json":
                    inodes[name] = entry.inode()
                elif name[-4:] == ".png":
                    pngs.append(name)
        return pngs, inodes

    def keyed(self) -> tuple[list[str], dict[str, Key]]:
        """(the .png names, each session image's sidecar key): the names, then a stat per sidecar."""
        names = os.listdir(self.path if self.fd is None else self.fd)
        sidecars = {name for name in names if name[-5:] == ".json"}
        pngs = [name for name in names if name[-4:] == ".png"]
        return pngs, {name: self.key(sidecar) for name in pngs
                      if (sidecar := name[:-4] + ".json") in sidecars and image_count(name) is not None}

    def key(self, sidecar: str) -> Key:
        """[inode, size, mtime_ns] of a sidecar; one that cannot be stat'ed gets a key that
        matches nothing (it is read, and fails there with the reason)."""
        try:
            st = os.stat(sidecar, dir_fd=self.fd) if self.fd is not None else os.stat(os.path.join(self.path, sidecar))
        except OSError:
            return [-1, -1, -1]
        return [st.st_ino, st.st_size, st.st_mtime_ns]


class StoredIndex(NamedTuple):
    """An index file as read: ``keys`` (png name -> its sidecar's key when written), ``view``
    (done, total, sources, skipped, thumb), ``body`` (see FolderIndex.body) and the records'
    rows, parsed only when needed."""
    keys: dict
    view: dict
    body: bytes
    rows: bytes


@functools.cache
def code_version() -> str:
    """Changes with the code that makes an index's records and grid: an index written by other
    code is rebuilt rather than trusted."""
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("gallery.py", "gallery_index.py", "sidecar.py", "contact_sheet/scan.py", "contact_sheet/plan.py"):
        with open(os.path.join(here, *name.split("/")), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def index_header(keys: dict[str, Key], view: dict) -> dict:
    """The file's first line: ``keys`` (image name -> its sidecar's key) and ``view`` (done,
    total, sources, skipped, thumb, and the grid's byte count)."""
    return {"format": INDEX_FORMAT, "version": INDEX_VERSION, "code": code_version(), "keys": keys, "view": view}


def read_index_file(path: str) -> StoredIndex | None:
    """The index file at ``path``; None when there is none or it is not one this code wrote
    (unreadable, truncated, foreign, another version): the caller reads the sidecars."""
    try:
        if os.path.getsize(path) > MAX_INDEX_BYTES:
            raise ValueError(f"larger than {MAX_INDEX_BYTES >> 20} MiB")
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if not (isinstance(header, dict) and header.get("format") == INDEX_FORMAT):
                raise ValueError("not a Prompt Media gallery index")
            if header.get("version") != INDEX_VERSION or header.get("code") != code_version():
                log.info("[Prompt Media] %s was written by another version; it is rebuilt", path)
                return None
            keys, view = header.get("keys"), header.get("view")
            if not (isinstance(keys, dict) and isinstance(view, dict) and _valid_view(view)):
                raise ValueError("malformed header")
            body = f.read(view["bytes"])
            if len(body) != view["bytes"] or f.read(1) != b"\n":
                raise ValueError("truncated")
            rows = f.read()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:            # ValueError: bad JSON / UTF-8 / layout
        log.warning("[Prompt Media] ignoring the gallery index %s (%s); it is rebuilt", path, e)
        return None
    return StoredIndex(keys, view, body, rows)


def _valid_view(view: dict) -> bool:
    thumb = view.get("thumb")
    return (type(view.get("done")) is int and type(view.get("total")) in (int, type(None))
            and type(view.get("bytes")) is int and view["bytes"] >= 0
            and _strings(view.get("sources")) and _strings(view.get("skipped"))
            and (thumb is None or (type(thumb) is list and len(thumb) == 2 and type(thumb[0]) is str
                                   and type(thumb[1]) is int)))


def _strings(value) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


_NONE = type(None)
# a row: [start, length] of the record's JSON in the body, width, height, task_id, seed,
# seed_index, prompt_index, variation_index, variations_per_prompt, base_prompt*, variation_values*,
# expansion_id*, source_name*, job_index, total, loras* (*: an index into a table: a session
# repeats its prompts, values and LoRAs, and ints are what JSON parses fastest)
_ROW_TYPES = {(int, int, int, int, int, seed, int, int, int, int, int, int, int, int, job, total, int)
              for seed in (int, _NONE) for job in (int, _NONE) for total in (int, _NONE)}


def encode_rows(entries: dict, images: list[SessionImage], pages: dict, body: bytes) -> dict:
    """The records as the index file keeps them: {"images": {name: row, or the reason it was
    skipped}, "texts", "values", "loras": the tables, "pages": each grid page's key, place in
    ``body`` and images (so that a change re-plans only its own page)}. ``body`` is
    FolderIndex.body of ``images`` (sorted) and ``pages`` (FolderIndex._pages)."""
    tables: dict[str, dict] = {"texts": {}, "values": {}, "loras": {}}

    def ref(table: str, key, value) -> int:
        known = tables[table]
        if key not in known:
            known[key] = (len(known), value)
        return known[key][0]

    rows = {name: e[1] for name, e in entries.items() if not isinstance(e[1], SessionImage)}
    at = len(body) - 1 - sum(len(entries[im.name][2]) + 1 for im in images) + bool(images)
    for im in images:
        length = len(entries[im.name][2])
        values = im.variation_values
        rows[im.name] = (at, length, *im.size, *im[3:9], ref("texts", im.base_prompt, im.base_prompt),
                         ref("values", tuple(values.items()), values), ref("texts", im.expansion_id, im.expansion_id),
                         ref("texts", im.source_name, im.source_name), im.job_index, im.total,
                         ref("loras", im.loras, im.loras))
        at += length + 1
    at, stored_pages = len(b'"pages":['), []
    for (expansion_id, seed_index), ((several, columns, *members), encoded) in pages.items():
        stored_pages.append((expansion_id, seed_index, several, columns, at, len(encoded), [im.name for im in members]))
        at += len(encoded) + 1
    return {"images": rows, "pages": stored_pages,
            **{table: [value for _i, value in known.values()] for table, known in tables.items()}}


def stored_entries(stored: StoredIndex, keys: dict[str, Key], folder: str) -> tuple[dict, dict]:
    """The entries of ``stored`` whose sidecar key is the one in ``keys`` (the sidecars as they
    are now), and the grid pages made of those records only (FolderIndex._pages); a row that is
    not a well-formed record is left out (its sidecar is read)."""
    try:
        data = json.loads(stored.rows)
        rows, texts, values, loras = data["images"], data["texts"], data["values"], data["loras"]
        pages = data["pages"]
        if not (type(rows) is dict and _strings(texts) and type(values) is list and type(loras) is list
                and type(pages) is list
                and all(type(v) is dict and _strings(list(v.values())) for v in values)
                and all(_strings(v) for v in loras)):
            raise ValueError("malformed tables")
    except (ValueError, TypeError, KeyError) as e:
        log.warning("[Prompt Media] ignoring the records of the gallery index of %s (%s); they are rebuilt",
                    folder, e)
        return {}, {}
    tables = texts, values, [tuple(v) for v in loras]
    entries = {}
    for name, key in keys.items():
        row = rows.get(name)
        if row is None or stored.keys.get(name) != key:
            continue
        if type(row) is str:
            entries[name] = (key, row, b"")
            continue
        image = _record(folder, name, row, stored.body, tables)
        if image is not None:
            entries[name] = (key, image, stored.body[row[0]:row[0] + row[1]])
    return entries, _stored_pages(pages, entries, stored.body)


def _stored_pages(pages: list, entries: dict, body: bytes) -> dict:
    out = {}
    for page in pages:
        if not (type(page) is list and len(page) == 7 and type(page[6]) is list):
            continue
        expansion_id, seed_index, several, columns, start, length, names = page
        members = [entries[n][1] if n in entries else None for n in names if type(n) is str]
        encoded = body[start:start + length] if type(start) is int and type(length) is int and start >= 0 else b""
        if (type(expansion_id) is str and type(seed_index) is int and type(several) is bool and type(columns) is int
                and len(members) == len(names) and all(isinstance(m, SessionImage) for m in members)
                and encoded.startswith(b'{"title":') and encoded.endswith(b"}")):
            out[(expansion_id, seed_index)] = ((several, columns, *members), encoded)
    return out


def _record(folder: str, name: str, row, body: bytes, tables: tuple) -> SessionImage | None:
    """A row of the index file as the record it was written from; None when it is not one."""
    if type(row) is not list or tuple(map(type, row)) not in _ROW_TYPES:
        return None
    start, length, width, height, task, seed, si, pi, vi, vpp, prompt, vals, expansion, source, job, total, lor = row
    end = start + length                          # its JSON: {"name":"<name>",...} in the body
    if not (0 <= start < end < len(body) and body[end - 1:end + 1] in (b"},", b"}]")
            and body.startswith(b'{"name":"%s",' % name.encode(), start)
            and min(prompt, vals, expansion, source, lor) >= 0):
        return None
    texts, values, loras = tables
    try:
        return SessionImage(folder + os.sep + name, name, (width, height), task, seed, si, pi, vi, vpp, texts[prompt],
                            values[vals], texts[expansion], texts[source], job, total, loras[lor])
    except IndexError:
        return None
