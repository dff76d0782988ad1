"""Small-file primitives of the store: atomic replacement, YAML, bare reads, leftover temporary files."""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from . import layout

log = logging.getLogger(__name__)


def now_iso() -> str:
    """Local time, ISO-8601 with the UTC offset."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@functools.lru_cache(maxsize=1)
def file_mode() -> int:
    """What ``open()`` would create: 0666 minus the umask (read once; setting it back is the only way to read it)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same directory and rename: readers never see half a file, and a
    failed write (a full disk) leaves the old file as it was and no temporary file behind.

    The file gets the permissions a plain ``open()`` would give it (``mkstemp`` alone makes it 0600, and
    colleagues sharing a cluster's logs directory could not read it)."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{layout.TEMP_PREFIX}{path.name}.", suffix=layout.TEMP_SUFFIX)
    try:
        os.fchmod(fd, file_mode())
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_new(path: Path | str, data: bytes) -> None:
    """Create ``path`` holding ``data``, failing if it exists: for a directory nobody else sees yet (a run being
    built in the staging directory), where a temporary file and a rename would buy nothing. Every temporary
    file an atomic write creates and every file it replaces costs an inode allocated or freed, and on ext4
    without a journal each freed inode slows the allocations of the next minutes (``recently_deleted``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)  # the umask applies, as open()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def dump_yaml(data: Any) -> bytes:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when PyYAML was built with it: ~10x faster
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True).encode("utf-8")


def read_yaml(path: Path | str) -> Any:
    import yaml

    with open(path, "rb") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_bytes(path: str) -> bytes:
    """The bytes of a small file, with bare system calls: a refresh reads several of them per run, and
    ``open()``'s buffered file object costs three times as much for files this size. Raises ``OSError``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            if len(chunk) < 1 << 16:  # a regular file gave less than asked: its end (one more read would say so)
                return b"".join(chunks)
    finally:
        os.close(fd)


def remove_temp_files(directories: list[Path]) -> int:
    """Remove the ``.*.tmp`` files atomic writes leave behind when their writer is killed; returns how many.
    Called by the run's writer when it starts (it holds the lease: no other writer can be mid-write)."""
    removed = 0
    for directory in directories:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(layout.TEMP_PREFIX) and name.endswith(layout.TEMP_SUFFIX):
                with suppress(OSError):
                    os.unlink(directory / name)
                    removed += 1
    if removed:
        log.debug("removed %d leftover temporary file(s) in %s", removed, directories[0].parent)
    return removed


def write_yaml(path: Path, data: Any) -> None:
    """``data`` as YAML, replacing ``path`` atomically (files outside a run's metadata; a run's own go through
    :meth:`mlxcore.store.Run.write_metadata`, which also keeps the readers' copy)."""
    write_atomic(path, dump_yaml(data))
