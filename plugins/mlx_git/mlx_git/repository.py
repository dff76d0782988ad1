"""Talking to git: find the repository of a script (with one-line errors for every way that can fail), read
its state, make the uncommitted diff, and commit only when a policy says so.

GitPython is imported here, lazily: importing it without a git executable raises, so the executable is looked
for first and its absence becomes :class:`GitNotFoundError`. Commands run through ``repo.git`` (the real git,
so hooks, filters and identity behave as on the command line) with ``GIT_OPTIONAL_LOCKS=0``: reading the
state never takes the index lock another launch, or the user's editor, may hold.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import GitCommandFailed, GitNotFoundError, NoCommitsError, NotARepositoryError

#: state directory mlxcore keeps at the top of every logs directory (:data:`mlxcore.store.STATE_DIR`)
LOGS_MARKER = ".mlxcore"
#: untracked files larger than this are listed in the record but left out of the patch
MAX_PATCHED_FILE = 1 << 20
#: at most this many untracked files are written into the patch
MAX_PATCHED_FILES = 200

READ_ENV = {"GIT_OPTIONAL_LOCKS": "0"}


def import_git() -> Any:
    """GitPython, or :class:`GitNotFoundError` when no git executable can be run."""
    executable = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE", "git")
    if shutil.which(executable) is None:
        raise GitNotFoundError(f"the git executable {executable!r} is not on PATH: install git (or set "
                               "GIT_PYTHON_GIT_EXECUTABLE), or launch with +mlx.use_version_manager=false")
    try:
        import git
    except ImportError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GitNotFoundError(f"GitPython cannot use git: {first}") from None
    return git


@dataclass
class TreeStatus:
    """How the working tree differs from HEAD. Paths are relative to the repository root, ``/``-separated;
    an untracked directory whose whole content is untracked is one entry ending in ``/``."""

    changed: list[str] = field(default_factory=list)  #: tracked paths with staged or unstaged changes
    untracked: list[str] = field(default_factory=list)  #: untracked paths that count (not ignored)

    @property
    def clean(self) -> bool:
        return not self.changed and not self.untracked

    def describe(self, limit: int = 10) -> str:
        """``modified: a.py, b.py; untracked: notes.txt`` (at most ``limit`` names per kind)."""
        parts = []
        for label, paths in (("modified", self.changed), ("untracked", self.untracked)):
            if paths:
                shown = ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
                parts.append(f"{label}: {shown}")
        return "; ".join(parts)


class Repository:
    """One git working tree, through GitPython."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.root = Path(repo.working_tree_dir).resolve()

    @classmethod
    def containing(cls, path: Path) -> Repository:
        """The repository whose working tree holds ``path``.

        :raises NotARepositoryError: no enclosing working tree (or a bare repository).
        :raises NoCommitsError: HEAD points to no commit yet.
        """
        git = import_git()
        start = path if path.is_dir() else path.parent
        try:
            repo = git.Repo(start, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise NotARepositoryError(f"{start} is not inside a git repository: run 'git init' and commit your "
                                      "code, or launch with +mlx.use_version_manager=false") from None
        if repo.bare or repo.working_tree_dir is None:
            raise NotARepositoryError(f"{repo.git_dir} is a bare repository: launch from a working tree")
        if not repo.head.is_valid():
            raise NoCommitsError(f"the repository {repo.working_tree_dir} has no commits yet: commit your code "
                                 "first (the run executes a snapshot of the last commit)")
        return cls(repo)

    # -- reading -------------------------------------------------------------------------------------------
    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        """``git <args>`` in the working tree; raw stdout (trailing newline kept, undecodable bytes escaped).

        :raises GitCommandFailed: git exited non-zero and ``check`` is set; the message quotes git's last words.
        """
        git = import_git()
        try:
            status, out, err = self.repo.git.execute(
                [self.repo.git.GIT_PYTHON_GIT_EXECUTABLE, *args], env={**READ_ENV, **(env or {})},
                with_extended_output=True, with_exceptions=False, stdout_as_string=False,
                strip_newline_in_stdout=False)
        except git.GitCommandNotFound:
            raise GitNotFoundError("the git executable disappeared from PATH during the launch") from None
        if check and status != 0:
            if isinstance(err, bytes):
                err = err.decode("utf-8", "replace")
            words = " | ".join(line.strip() for line in str(err).strip().splitlines()[-3:]) or "no output"
            raise GitCommandFailed(f"git {args[0]} failed in {self.root} (exit {status}): {words}")
        return out.decode("utf-8", "surrogateescape")

    def head_sha(self) -> str:
        return self.repo.head.commit.hexsha

    def branch(self) -> str | None:
        """The checked-out branch, ``None`` on a detached HEAD."""
        return None if self.repo.head.is_detached else self.repo.head.reference.name

    def remote_url(self) -> str | None:
        """``origin``'s URL (else the first remote's), without any user or token an https URL carries."""
        remotes = {remote.name: remote for remote in self.repo.remotes}
        remote = remotes.get("origin") or next(iter(remotes.values()), None)
        if remote is None:
            return None
        try:
            url = next(iter(remote.urls))
        except Exception:  # noqa: BLE001 - no URL: StopIteration, or GitPython's own error
            return None
        return public_url(url)

    def has_file(self, sha: str, relative: str) -> bool:
        """Commit ``sha`` holds the file ``relative`` (a ``/``-separated path)."""
        try:
            return self.repo.commit(sha).tree[relative].type == "blob"
        except KeyError:
            return False

    def relative(self, path: Path) -> str | None:
        """``path`` relative to the root (``/``-separated), or ``None`` when it lies outside."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def status(self, ignore: list[str], skip: list[Path]) -> TreeStatus:
        """Tracked changes and the untracked paths that count: mlxcore logs directories (they hold
        ``.mlxcore/``), paths under ``skip`` and paths matching an ``ignore`` pattern do not."""
        out = self.run("status", "--porcelain=v1", "-z", "--untracked-files=normal", "--no-renames")
        status = TreeStatus()
        for entry in out.split("\0"):
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if code == "??":
                if not self._skipped(path, ignore, skip):
                    status.untracked.append(path)
            elif code != "!!":
                status.changed.append(path)
        return status

    def _skipped(self, path: str, ignore: list[str], skip: list[Path]) -> bool:
        full = self.root / path
        if path.endswith("/") and (full / LOGS_MARKER).is_dir():
            return True
        if any(_under(full, s) for s in skip):
            return True
        return ignored(path, ignore)

    def untracked_files(self, entry: str, ignore: list[str]) -> list[str]:
        """The files an untracked ``entry`` stands for (a directory entry expands), minus ignored ones."""
        if not entry.endswith("/"):
            return [entry]
        out = self.run("ls-files", "-z", "--others", "--exclude-standard", "--", entry)
        return [p for p in out.split("\0") if p and not ignored(p, ignore)]

    def patch(self, status: TreeStatus, ignore: list[str]) -> tuple[str, list[str]]:
        """The uncommitted diff against HEAD, binary-safe and appliable with ``git apply``: tracked changes
        (staged or not), then untracked files as new files. Returns the patch and the untracked files left
        out of it (too large, or past :data:`MAX_PATCHED_FILES`)."""
        diff_options = ["--binary", "--no-color", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/"]
        parts = [self.run("diff", "HEAD", *diff_options)] if status.changed else []
        left_out: list[str] = []
        files = [f for entry in status.untracked for f in self.untracked_files(entry, ignore)]
        for index, name in enumerate(files):
            full = self.root / name
            if index >= MAX_PATCHED_FILES or (full.is_file() and full.stat().st_size > MAX_PATCHED_FILE):
                left_out.append(name)
                continue
            # exit code 1 means "they differ", which they always do: not an error here
            parts.append(self.run("diff", "--no-index", *diff_options, "--", "/dev/null", name, check=False))
        return "".join(parts), left_out

    # -- changing (only when a policy says so) ---------------------------------------------------------------
    def commit(self, paths: list[str], message: str) -> str:
        """Stage ``paths`` (deletions too) and commit everything staged; returns the new HEAD sha."""
        for start in range(0, len(paths), 500):
            self.run("add", "-A", "--", *paths[start:start + 500], env={"GIT_OPTIONAL_LOCKS": "1"})
        self.run("commit", "--quiet", "-m", message, env={"GIT_OPTIONAL_LOCKS": "1"})
        return self.repo.head.commit.hexsha


def ignored(path: str, patterns: list[str]) -> bool:
    """``path`` or one of its components (directories carry a trailing ``/``) matches a pattern."""
    if any(fnmatch.fnmatch(path, p) for p in patterns):
        return True
    parts = path.rstrip("/").split("/")
    names = [part + "/" for part in parts[:-1]] + [parts[-1] + ("/" if path.endswith("/") else "")]
    return any(fnmatch.fnmatch(name, p) for name in names for p in patterns)


def public_url(url: str) -> str:
    """``url`` without the user name and password of an http(s) URL (tokens live there)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and (parts.username or parts.password):
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _under(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True
