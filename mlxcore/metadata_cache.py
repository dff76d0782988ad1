"""A JSON copy of a run's YAML metadata, so that indexing thousands of runs need not parse their YAML.

``metadata/info.yaml``, ``config.yaml`` and ``scheduler.yaml`` stay the record (people read them, other tools
write them). Whenever mlxcore writes one of them it also stores, in ``metadata/.cache.json``, the data it wrote
and the SHA-1 of the YAML bytes. A reader uses the copy only when the hash of the file it has just read matches,
so a file edited by hand, written by another tool, or written while another process updated the copy is simply
parsed as YAML: the copy can make a read faster, never wrong. Parsing a 600-byte ``info.yaml`` with libyaml costs
about 200 us (its constructor is pure Python); reading the copy costs about 15.

Data that JSON would not give back equal (non-string keys, dates, NaN) is not copied.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_NAME = ".cache.json"
CACHED_FILES = frozenset({"info.yaml", "config.yaml", "scheduler.yaml"})
VERSION = 1


def read_bytes(path: str) -> bytes:
    """The bytes of a small file, with bare system calls: a refresh reads five of them per run, and ``open()``'s
    buffered file object costs three times as much for files this size. Raises ``OSError`` like ``open``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            if len(chunk) < 1 << 16:  # a regular file gave less than asked: its end (one more read would say so)
                return b"".join(chunks)
    finally:
        os.close(fd)


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def load(metadata_dir: str | Path) -> dict[str, Any]:
    """``{file name: {"sha1": ..., "data": ...}}`` of ``metadata_dir``'s copy; ``{}`` when missing or unreadable."""
    try:
        cache = json.loads(read_bytes(f"{metadata_dir}/{CACHE_NAME}"))
    except (OSError, ValueError):
        return {}
    files = cache.get("files") if isinstance(cache, dict) and cache.get("version") == VERSION else None
    return files if isinstance(files, dict) else {}


def lookup(files: dict[str, Any], name: str, raw: bytes) -> tuple[bool, Any]:
    """``(True, data)`` when ``files`` holds a copy of exactly ``raw`` (the bytes of ``name``), else ``(False, None)``."""
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


def record(path: Path, raw: bytes, data: Any) -> None:
    """Store ``data`` (just written to ``path`` as ``raw``) in the copy of ``path``'s directory, when ``path`` is
    one of :data:`CACHED_FILES` of a ``metadata`` directory. A failure only costs speed: it is logged, not raised."""
    if path.name not in CACHED_FILES or path.parent.name != "metadata":
        return
    from .runs import write_atomic

    try:
        encoded = json.dumps(data, allow_nan=False)
        exact = json.loads(encoded) == data
    except (TypeError, ValueError):
        exact = False
    files = load(path.parent)
    if exact:
        files[path.name] = {"sha1": digest(raw), "data": data}
    elif files.pop(path.name, None) is None:
        return
    try:
        write_atomic(path.parent / CACHE_NAME, json.dumps({"version": VERSION, "files": files}, allow_nan=False))
    except OSError as exc:
        log.debug("cannot update %s: %s", path.parent / CACHE_NAME, exc)
