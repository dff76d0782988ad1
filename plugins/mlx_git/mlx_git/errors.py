"""The git version manager's refusals: each one line, each a :class:`~mlxcore.errors.VersionManagerError`, so
the launcher prints it without a traceback and exits with code 2."""

from __future__ import annotations

from mlxcore.errors import VersionManagerError


class GitNotFoundError(VersionManagerError):
    """The git executable is not on PATH (GitPython needs it)."""


class NotARepositoryError(VersionManagerError):
    """The script is not inside a git working tree."""


class NoCommitsError(VersionManagerError):
    """The repository has no commit yet: there is nothing to snapshot."""


class DirtyTreeError(VersionManagerError):
    """The working tree differs from its last commit and the policy refuses to launch (or the user aborted)."""


class SnapshotError(VersionManagerError):
    """The snapshot root cannot be written, or the snapshot cannot be built."""


class GitCommandFailed(VersionManagerError):
    """A git command failed (a commit hook, a missing identity, a lock held by another git)."""
