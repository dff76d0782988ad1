"""The one process that writes a run: it holds the run's lease from the moment the run starts until its final
status is recorded.

:meth:`RunWriter.create` makes a new RUNNING run (the lease is taken before the directory appears);
:meth:`RunWriter.attach` starts a run that exists (a submitted job starting, a resume, a rerun): the lease is
taken first (a live writer refuses it), a dead writer's lease is taken over and recorded, the run's recorded
config is compared with the one this process would run (a change is refused unless allowed, and recorded when
allowed), and leftover temporary files of a killed writer are removed. :meth:`RunWriter.finish` records how the
run ended and gives the lease up; when even that cannot be written (a full disk), the released lease makes
the run show DEAD, never RUNNING forever.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..errors import ConfigError, RunError
from . import layout
from .files import now_iso, remove_temp_files
from .lease import Lease
from .run import Run, RunStore
from .statuses import DEAD, FAILED, RUNNING

log = logging.getLogger(__name__)


class ConfigChangedError(ConfigError):
    """A run would start again with another config than the one it recorded."""


class RunWriteError(RunError):
    """What a run produced could not all be written (its rows, its final status)."""


def config_changes(recorded: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``[(dotted key, recorded value, new value)]`` for every leaf that differs (a missing side is ``<absent>``)."""
    if isinstance(recorded, dict) and isinstance(new, dict):
        out = []
        for key in [*recorded, *(k for k in new if k not in recorded)]:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            out += config_changes(recorded.get(key, _ABSENT), new.get(key, _ABSENT), dotted)
        return out
    if recorded == new and type(recorded) is type(new):
        return []
    return [(prefix or "<config>", recorded, new)]


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def describe_changes(changes: list[tuple[str, Any, Any]], limit: int = 5) -> str:
    shown = "; ".join(f"{key}: recorded {old!r}, now {new!r}" for key, old, new in changes[:limit])
    return shown + (f"; and {len(changes) - limit} more" if len(changes) > limit else "")


def check_config(run: Run, config: dict[str, Any] | None, allowed: bool
                 ) -> tuple[list[tuple[str, Any, Any]], bool]:
    """``(changes, write)``: the changes ``config`` makes to the config ``run`` recorded (none when either is
    missing), and whether ``config`` is to be written (it changes the recorded one, or there is none yet).

    :raises ConfigChangedError: there are changes and ``allowed`` is false.
    """
    recorded = run.read_config()
    if config is None or recorded is None:
        return [], config is not None
    changes = config_changes(recorded, config)
    if changes and not allowed:
        raise ConfigChangedError(
            f"run {run.log_id} was recorded with another config ({describe_changes(changes)}); it resumes "
            "with its recorded config: drop the overrides that change it, or add "
            "+mlx.allow_config_change=true to change it (the change is recorded in the run's history)")
    return [(key, _plain(old), _plain(new)) for key, old, new in changes], bool(changes)


class RunWriter:
    """This process's hold on a run: the lease, the heartbeat, and the run's status from start to end."""

    def __init__(self, run: Run, lease: Lease) -> None:
        self.run = run
        self.lease = lease
        self.started = time.time()

    @property
    def log_id(self) -> int:
        return self.run.log_id

    @classmethod
    def create(cls, store: RunStore, info: dict[str, Any], metadata: dict[str, Any],
               heartbeat_interval: float, log_id: int | None = None) -> RunWriter:
        """A new RUNNING run (id ``log_id``, or the next one) written by this process."""
        run, lease = store.create(RUNNING, {**info, "attempt": 1, "end_time": None}, metadata, log_id=log_id,
                                  before_info=lambda staged: Lease.acquire(staged.paths, staged.log_id,
                                                                           heartbeat_interval))
        lease.paths = run.paths  # the staging directory it was taken in became the run directory
        lease.start_heartbeat()
        return cls(run, lease)

    @classmethod
    def attach(cls, run: Run, info: dict[str, Any], metadata: dict[str, Any], heartbeat_interval: float,
               config: dict[str, Any] | None, allow_config_change: bool = False) -> RunWriter:
        """Start the existing ``run`` in this process (see the module docstring).

        :param config: the resolved config this process would run; compared with the recorded one.
        :raises RunBusyError: another live process writes the run.
        :raises ConfigChangedError: ``config`` differs from the recorded config and the change is not allowed.
        """
        lease = Lease.acquire(run.paths, run.log_id, heartbeat_interval)
        try:
            recorded_info = run.read_info()
            previous = recorded_info.get("status") if recorded_info else None
            if previous == RUNNING:  # its writer is gone (we hold the lease): that attempt died
                previous = DEAD
            changes, write_config = check_config(run, config, allow_config_change)
            remove_temp_files(run.paths.temp_dirs())
            if write_config:
                run.write_metadata(layout.CONFIG, config)
            for name, data in metadata.items():
                run.write_metadata(name, data)
            attempt = int((recorded_info or {}).get("attempt") or 0) + 1
            run.set_status(RUNNING, previous=previous, **{"format": layout.FORMAT, **info, "attempt": attempt,
                                                          "end_time": None})
            if lease.previous is not None:
                run.add_history(event="takeover", previous_writer=lease.previous.describe())
            if changes:
                run.add_history(event="config_changed", changes=[
                    {"key": key, "recorded": old, "new": new} for key, old, new in changes])
        except BaseException:
            lease.release()
            raise
        lease.start_heartbeat()
        return cls(run, lease)

    def finish(self, status: str, **fields: Any) -> None:
        """Record the final ``status`` and give the lease up (always, even when the record cannot be written).

        :raises RunWriteError: the final status could not be written (the run then records FAILED if it can,
            else shows DEAD).
        """
        start = self.run.info.get("start_timestamp")
        duration = round(time.time() - start, 3) if isinstance(start, (int, float)) else None
        info = self.run.info
        fields = {**cost(duration, info.get("allocation"), info.get("history") or []), **fields}
        try:
            self.run.set_status(status, end_time=now_iso(), duration_s=duration, **fields)
        except OSError as exc:
            message = f"run {self.log_id}: cannot record its final status {status}: {exc.strerror or exc}"
            try:  # the smallest record that tells the truth
                self.run.set_status(FAILED, end_time=now_iso(), error={"type": "RunWriteError", "message": message})
            except OSError:
                log.error("%s; the run will show DEAD", message)
            raise RunWriteError(message) from None
        finally:
            self.lease.release()


def cost(duration: float | None, allocation: Any, history: list[Any]) -> dict[str, float | None]:
    """The run's CPU- and GPU-hours over all its attempts: each attempt's duration times what it was given
    (``attempt_cpu_hours``, kept in ``history``), summed; ``None`` when any attempt's is not known.
    Schedulers with accounting know better: ``mlxcore status`` shows theirs."""
    given = allocation if isinstance(allocation, dict) else {}
    cpus, gpus = given.get("cpus"), given.get("gpus")
    now = {"cpu": duration * cpus / 3600 if duration is not None and isinstance(cpus, int) else None,
           "gpu": duration * len(gpus) / 3600 if duration is not None and isinstance(gpus, list) else None}
    out: dict[str, float | None] = {}
    for kind, value in now.items():
        attempts = [h.get(f"attempt_{kind}_hours") for h in history if isinstance(h, dict) and "attempt" in h]
        earlier = [float(a) for a in attempts if isinstance(a, (int, float))]
        out[f"attempt_{kind}_hours"] = None if value is None else round(value, 6)
        known = value is not None and len(earlier) == len(attempts)
        out[f"{kind}_hours"] = round(value + sum(earlier), 6) if known and value is not None else None
    return out


def _plain(value: Any) -> Any:
    return None if isinstance(value, _Absent) else value
