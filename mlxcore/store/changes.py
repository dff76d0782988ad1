"""The logs directory's change stamp: ``<logs>/.mlxcore/changed``, touched before and after every write to the
metadata of a run in the directory.

Why: a reader that surveyed the directory (one ``stat`` per run, :mod:`mlxcore.reader.scan`) can then tell with
two ``stat`` calls, this file's and the directory's, that no run it saw finished has changed since: every change
to a finished run (it starts again, is cancelled, is found dead, is resubmitted or put back) is a metadata write
through the store, and a run that appears or is removed changes the directory itself. A reader reopened in a
loop or a notebook then pays for the runs still going only, not for every run of the directory.

Its ``ctime`` is what counts, not its ``mtime``: the kernel sets ``ctime`` to the time of the change, and no
tool that copies files (``rsync -a``, ``cp -p``) can set it back. It is touched *before* the write, so a reader
that looks while the write is under way sees the stamp changed and surveys every run, and *after*, so that the
write is never older than the stamp. A process killed between its write and the second touch leaves the stamp
as the first touch left it: a reader that recorded that stamp more than :data:`mlxcore.reader.scan.RACY_NS`
after it, and before the write, would miss the write; such a reader surveys every run again after at most
``mlxcore.reader.catalog.FULL_SURVEY_EVERY`` seconds, and ``refresh(rebuild=True)`` reads everything.
Files written by hand, not through the store, are not seen by this shortcut: rebuild the catalog after such an
edit (README, "Reading results").
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from . import layout
from .files import file_mode

log = logging.getLogger(__name__)

STAMP = "changed"
_warned: set[str] = set()


def stamp_path(parent: Path | str) -> str:
    """The change stamp of the logs directory ``parent``."""
    return f"{parent}/{layout.STATE_DIR}/{STAMP}"


def touch(run_dir: Path) -> None:
    """Mark a change to the run at ``run_dir`` (nothing for a run still being built in the staging directory:
    no reader sees it there). A stamp that cannot be written is said once per directory, never raised: the
    write itself must not fail for it; readers of that directory then survey every run each time only if the
    stamp does not exist (see :func:`identity`)."""
    parent = run_dir.parent
    if not layout.is_run_name(run_dir.name) or parent.name == layout.STAGING_DIR:
        return
    path = stamp_path(parent)
    try:
        try:
            os.utime(path)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, file_mode()))
            os.utime(path)  # created by another process meanwhile: its ctime must still move
    except OSError as exc:
        if path not in _warned:
            _warned.add(path)
            log.warning("cannot update %s (%s): readers of %s in a loop may not see this run's changes until "
                        "they rebuild their catalog", path, exc.strerror or exc, parent)


def identity(parent: Path | str, racy_ns: int, now_ns: int) -> tuple | None:
    """What a reader records to tell later that nothing changed: inode and ``ctime`` of the stamp and of the
    logs directory; ``None`` when the stamp is missing, or either changed less than ``racy_ns`` before
    ``now_ns`` (a change in the same tick of the file system's clock could go unseen)."""
    try:
        stamp = os.stat(stamp_path(parent))
        directory = os.stat(parent)
    except OSError:
        return None
    racy_after = now_ns - racy_ns
    if stamp.st_ctime_ns >= racy_after or directory.st_ctime_ns >= racy_after:
        return None
    return (stamp.st_ino, stamp.st_ctime_ns, directory.st_ino, directory.st_ctime_ns, directory.st_mtime_ns)
