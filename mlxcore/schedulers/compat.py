"""Schedulers written for the 0.1 interface keep working: their class flags become a job environment.

Interface 0.1 described a job with class attributes of the scheduler (``job_id_variable``,
``array_index_variable``, ``array_first_index``, ``array_job_in_arguments``, ``restarts_under_new_id``) and
a ``preempted_lines(submission)`` method; 0.2 gathers them in a
:class:`~mlxcore.schedulers.environment.JobEnvironment` returned by ``Scheduler.job_environment()``. A 0.1
class is translated when it is defined (its ``interface_version`` becomes ``"0.1"``, shown by ``mlxcore
plugins``) and warned about once; a class that cannot work is refused then, in one line naming the change
and the fix (:class:`~mlxcore.errors.PluginError`, which ``mlxcore plugins`` shows as the plugin's error).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PluginError
from .environment import JobEnvironment, arguments_array_job, record_attempt

if TYPE_CHECKING:
    from .base import Scheduler, Submission

#: the 0.1 class attributes, and their defaults
LEGACY_FLAGS: dict[str, Any] = {
    "job_id_variable": None,
    "array_index_variable": None,
    "array_first_index": 0,
    "array_job_in_arguments": False,
    "restarts_under_new_id": False,
}
LEGACY_METHOD = "preempted_lines"
CHANGE = "scheduler interface 0.2 moved the job's description into Scheduler.job_environment()"


@dataclass
class LegacyJobEnvironment(JobEnvironment):
    """A 0.1 scheduler's flags, as the job environment they describe."""

    in_arguments: bool = False
    records_attempts: bool = False
    preempted: Callable[[Submission], list[str]] | None = None

    def array_job_lines(self, args_file: Path | None) -> list[str]:
        return arguments_array_job() if self.in_arguments else super().array_job_lines(args_file)

    def attempt_lines(self) -> list[str]:
        return record_attempt(self.job_id_variable) if self.records_attempts and self.job_id_variable else []

    def requeue_lines(self, submission: Submission) -> list[str]:
        return list(self.preempted(submission)) if self.preempted is not None else []


def legacy_parts(cls: type) -> list[str]:
    """The 0.1 attributes and methods ``cls`` has (its own or inherited from a 0.1 class)."""
    return [name for name in (*LEGACY_FLAGS, LEGACY_METHOD) if hasattr(cls, name)]


def check_subclass(cls: type[Any], base: type[Any]) -> None:
    """Called when a scheduler class is defined: mark and warn about a 0.1 class, refuse one that cannot work.

    :raises PluginError: the class overrides ``job_environment`` and also sets 0.1 flags (which would be
        ignored), or it cannot submit (neither ``submit`` nor both ``submit_argv`` and ``parse_job_ids``).
    """
    label = f"scheduler class {cls.__module__}.{cls.__qualname__}"
    parts = legacy_parts(cls)
    if parts:
        if cls.job_environment is not base.job_environment:
            raise PluginError(f"{label} sets {', '.join(parts)} and overrides job_environment(): {CHANGE}; "
                              f"move {', '.join(parts)} into the JobEnvironment it returns")
        if "interface_version" not in vars(cls):
            cls.interface_version = "0.1"
        warnings.warn(f"{label} uses the 0.1 interface ({', '.join(parts)}): it is translated, but {CHANGE}; "
                      "return a JobEnvironment from job_environment() instead", DeprecationWarning, stacklevel=3)
    concrete = isinstance(vars(cls).get("name"), str)
    argv_pair = cls.submit_argv is not base.submit_argv and cls.parse_job_ids is not base.parse_job_ids
    if concrete and cls.submit is base.submit and not argv_pair:
        raise PluginError(f"{label} cannot submit: implement submit(submission), returning one job id per job, "
                          "or both submit_argv() and parse_job_ids()")


def legacy_environment(scheduler: Scheduler) -> JobEnvironment | None:
    """The job environment a 0.1 scheduler's flags describe (``None`` for a 0.2 scheduler)."""
    cls = type(scheduler)
    if not legacy_parts(cls):
        return None
    flags = {name: getattr(cls, name, default) for name, default in LEGACY_FLAGS.items()}
    method = getattr(scheduler, LEGACY_METHOD, None)
    return LegacyJobEnvironment(
        job_id_variable=flags["job_id_variable"], array_index_variable=flags["array_index_variable"],
        array_first_index=flags["array_first_index"], in_arguments=bool(flags["array_job_in_arguments"]),
        records_attempts=bool(flags["restarts_under_new_id"]), preempted=method)
