"""Directories, file names and array parameters in the forms OAR 2.5 can carry.

OAR copies the launching directory, the ``-O``/``-E`` files and the job name into single-quoted Perl strings of
the small program ``oarexec`` runs on the node. A ``'`` or a ``\\`` in one of them breaks that program: the job
goes to Error *and the node becomes Suspected*, so every later job waits (observed on OAR 2.5.9). ``%`` may
form a ``%jobid%`` pattern and surrounding blanks are trimmed. A directory whose path has any of these is
reached through a symlink with a plain name in the submitting user's home (``~/.cache/mlxcore-oar/<hash>``):
jobs run as that user, so they can enter it, and the link outlives the submission as long as a resubmitted
job may need it.

OAR cuts each line of an ``--array-param-file`` at its first ``#`` (its comment sign), reads the file line by
line, appends the line to the array job's command and has the user's login shell run the result. Words are
therefore shell-quoted, and a word holding ``#`` or a newline is written as a ``printf`` command substitution
that rebuilds it without either character appearing on the line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import tempfile
from pathlib import Path

from mlxcore.errors import ConfigError

log = logging.getLogger(__name__)

#: characters OAR cannot carry in a launching directory, an output file or a job name (see the module doc)
UNSAFE = ("'", "\\", "%", "\n", "\r", "\t")


def oar_safe(text: str) -> bool:
    """True when OAR can carry ``text`` in a launching directory, an output file name or a job name."""
    return bool(text) and text == text.strip() and not any(c in text for c in UNSAFE)


def alias_root() -> Path:
    """Where the plain-named symlinks live: ``~/.cache/mlxcore-oar``, or the temporary directory when the home
    directory itself is not OAR-safe."""
    home = Path.home()
    if oar_safe(str(home)) and os.access(home, os.W_OK):
        return home / ".cache" / "mlxcore-oar"
    return Path(tempfile.gettempdir()) / f"mlxcore-oar-{os.getuid()}"


def reachable(directory: Path) -> Path:
    """``directory`` itself when OAR can carry its path, else the symlink :func:`ensure_reachable` makes."""
    text = str(directory)
    if oar_safe(text):
        return directory
    return alias_root() / hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_reachable(directory: Path) -> Path:
    """:func:`reachable`, creating (or repointing) the symlink when one is needed."""
    path = reachable(directory)
    if path == directory:
        return path
    if not oar_safe(str(path)):
        raise ConfigError(f"OAR cannot use the directory {str(directory)!r} (a quote, backslash or % in its path) "
                          f"and no plain-named place for a link to it was found; use a plainer path")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.is_symlink() and os.readlink(path) == str(directory):
        return path
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    os.symlink(directory, temporary)
    os.replace(temporary, path)
    log.debug("OAR reaches %s through %s", directory, path)
    return path


def job_name(name: str) -> str:
    """``name`` with every character OAR could trip on replaced by ``_``."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned or "mlxcore"


def param_word(word: str) -> str:
    """One shell word for an array parameter line (see the module doc)."""
    if "#" not in word and "\n" not in word:
        return shlex.quote(word)
    if word.endswith("\n"):  # a command substitution drops trailing newlines
        raise ConfigError(f"OAR's array parameter file cannot carry {word!r} (it ends with a newline); "
                          "submit one job per point (mlx.scheduler.array=false)")
    body = word.replace("\\", "\\\\").replace("#", "\\0043").replace("\n", "\\n").replace("'", "'\"'\"'")
    return f"\"$(printf '%b' '{body}')\""


def param_line(words: list[str]) -> str:
    """The words of one array job as one line of OAR's ``--array-param-file``."""
    return " ".join(param_word(word) for word in words)
