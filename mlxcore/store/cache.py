"""What the store keeps for readers: a JSON copy of a run's YAML metadata, so that indexing thousands of runs
need not parse their YAML.

``metadata/info.yaml``, ``config.yaml`` and ``scheduler.yaml`` stay the record (people read them, other tools
write them). Whenever the store writes one of them it also stores, in ``metadata/.cache.json``, the data it
wrote and the SHA-1 of the YAML bytes. A reader uses the copy only when the hash of the file it has just read
matches, so a file edited by hand, written by another tool, or written while another process updated the copy
is simply parsed as YAML: the copy can make a read faster, never wrong. Parsing a 600-byte ``info.yaml`` with
libyaml costs about 200 us (its constructor is pure Python); reading the copy costs about 15.

Data that JSON would not give back equal (non-string keys, dates, NaN) is not copied.

The copy of ``scheduler.yaml`` is kept apart, in ``metadata/.cache.scheduler.json`` (:data:`SEPARATE`): the
submission records it once per run right after ``sbatch``, when the run's ``.cache.json`` exists already, and
replacing that file would free its inode and data block. On ext4 without a journal (this project's test machine)
a freed block is discarded at once and a freed inode slows the next allocations for minutes: replacing the
10,000 ``.cache.json`` of a 10,000-run submission cost about 1 ms a run. A reader merges both files; as every
copy is checked against the bytes of its file, a stale copy in either is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from . import layout
from .files import read_bytes, write_atomic

log = logging.getLogger(__name__)

CACHED_FILES = frozenset({layout.INFO, layout.CONFIG, layout.SCHEDULER})
#: the files whose copy has a document of its own, and its name
SEPARATE = {layout.SCHEDULER: layout.SCHEDULER_CACHE}
VERSION = 1


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def load(metadata_dir: str | Path) -> dict[str, Any]:
    """``{file name: {"sha1": ..., "data": ...}}`` of ``metadata_dir``'s copies (``.cache.json`` and the
    documents of :data:`SEPARATE`); ``{}`` when missing or unreadable."""
    files = _load_document(f"{metadata_dir}/{layout.METADATA_CACHE}")
    for name, document_name in SEPARATE.items():
        own = _load_document(f"{metadata_dir}/{document_name}")
        if name in own:
            files[name] = own[name]
    return files


def _load_document(path: str) -> dict[str, Any]:
    try:
        cache = json.loads(read_bytes(path))
    except (OSError, ValueError):
        return {}
    files = cache.get("files") if isinstance(cache, dict) and cache.get("version") == VERSION else None
    return files if isinstance(files, dict) else {}


def document_of(name: str) -> str:
    """The name of the document that holds the copy of ``name``."""
    return SEPARATE.get(name, layout.METADATA_CACHE)


def lookup(files: dict[str, Any], name: str, raw: bytes) -> tuple[bool, Any]:
    """``(True, data)`` when ``files`` holds a copy of exactly ``raw`` (the bytes of ``name``), else
    ``(False, None)``."""
    entry = files.get(name)
    if isinstance(entry, dict) and entry.get("sha1") == digest(raw) and "data" in entry:
        return True, entry["data"]
    return False, None


def read(metadata_dir: str | Path, name: str, copies: dict[str, Any], loader: Any = None) -> Any:
    """The data of ``metadata_dir/name``: from ``copies`` (:func:`load`) when they hold exactly the file's bytes,
    else parsed as YAML. Raises what reading or parsing the file raises (``FileNotFoundError``, ``yaml.YAMLError``)."""
    raw = read_bytes(f"{metadata_dir}/{name}")
    cached, data = lookup(copies, name, raw)
    if cached:
        return data
    import yaml

    return yaml.load(raw, Loader=loader or getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def entry(raw: bytes, data: Any) -> dict[str, Any] | None:
    """The copy of ``data`` (written as ``raw``) a reader may use, or ``None`` when JSON would not give it back
    equal."""
    try:
        exact = json.loads(json.dumps(data, allow_nan=False)) == data
    except (TypeError, ValueError):
        return None
    return {"sha1": digest(raw), "data": data} if exact else None


def document(files: dict[str, Any]) -> bytes:
    """The bytes of a ``.cache.json`` holding ``files`` (``{name: entry}``)."""
    return json.dumps({"version": VERSION, "files": files}, allow_nan=False).encode()


def record(metadata_dir: Path, name: str, raw: bytes, data: Any) -> None:
    """Store ``data`` (just written to ``metadata_dir/name`` as ``raw``) in the directory's copy, when ``name`` is
    one of :data:`CACHED_FILES`. A failure only costs speed: it is logged, not raised."""
    if name not in CACHED_FILES:
        return
    copy = entry(raw, data)
    target = metadata_dir / document_of(name)
    files = _load_document(str(target))
    if copy is not None:
        files[name] = copy
    elif files.pop(name, None) is None:
        return
    try:
        write_atomic(target, document(files))
    except OSError as exc:
        log.debug("cannot update %s: %s", target, exc)
