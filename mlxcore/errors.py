"""The exception hierarchy.

Every error a *user* can cause (a bad setting, a bad override, an unknown plugin name, a refused query) is an
:class:`MlxcoreError`. The command line and :func:`mlxcore.launch` print such an error as one line, naming the
bad value and the valid choices, and show the traceback only when ``MLXCORE_FULL_ERROR=1`` is set. Anything
that is not an :class:`MlxcoreError` is a bug (ours or the task's) and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MlxcoreError(Exception):
    """Base class of every error mlxcore raises on purpose."""


class ConfigError(MlxcoreError):
    """A configuration file, a framework setting or a command-line override is wrong."""


class UnknownChoiceError(ConfigError, KeyError):
    """A name was looked up among a closed set of choices and is not one of them.

    The message names the bad value, the closest matches, and every valid choice.
    """

    def __init__(self, what: str, value: object, choices: Iterable[str]) -> None:
        self.what = what
        self.value = value
        self.choices = sorted(choices)
        super().__init__(format_unknown(what, value, self.choices))

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


def format_unknown(what: str, value: object, choices: Iterable[str]) -> str:
    """One line: ``unknown <what> 'x' (did you mean 'y'?); valid: a, b, c``."""
    choices = sorted(choices)
    close = difflib.get_close_matches(str(value), choices, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    valid = ", ".join(choices) if choices else "none available"
    return f"unknown {what} {value!r}{hint}; valid: {valid}"


class PluginError(MlxcoreError):
    """A plugin could not be loaded, or two plugins registered the same name."""


class RunError(MlxcoreError):
    """A run directory is missing, unreadable, or cannot be created."""


class ArtifactError(MlxcoreError):
    """An artifact or checkpoint cannot be saved or loaded."""


class CheckpointNotFoundError(ArtifactError, FileNotFoundError):
    """The run has no checkpoint under that name (yet)."""


class SchedulerError(MlxcoreError):
    """A scheduler command is missing, or refused a submission, a status query or a cancel."""


class JobEnvironmentError(SchedulerError):
    """A job cannot run its task as submitted where it landed (another interpreter on the node)."""


class SubmissionError(SchedulerError):
    """A job could not be submitted; the scheduler's own message is quoted."""


class VersionManagerError(MlxcoreError):
    """The version manager refused to launch (dirty tree under policy ``error``, not a repository, ...)."""


class QueryError(MlxcoreError):
    """A filter string or SQL query is invalid, refused, or names an unknown column."""
