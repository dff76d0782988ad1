"""Where a search's studies live, and ``ctx.trial`` in the process that runs a trial.

All studies of a logs directory share ONE Optuna journal file, ``<logs>/.optuna/journal.log``: it lives with the
runs it describes (copy or move the logs directory and the studies come along), an append-only journal needs no
database server, and its file lock lets the launcher (which asks and tells) and the trials' processes (which
report intermediate values, in this process, a local-pool worker or a job on a cluster) write it at once. The
run store's id scanner ignores the non-numeric ``.optuna`` directory.

A trial's process knows its trial only from its run's ``info.trial`` record: the journal's path, the study's
name, the trial's id and the pruner's spec, from which :class:`OptunaTrial` rebuilds the pruner (the pruner
decides in the trial's process, from the intermediate values every trial of the study reported).
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlxcore.errors import ConfigError

#: the journal of every study of a logs directory, relative to it
JOURNAL = Path(".optuna") / "journal.log"

_storages: dict[str, Any] = {}


def journal_path(log_dir_root: Path) -> Path:
    return Path(log_dir_root) / JOURNAL


def open_storage(path: Path | str) -> Any:
    """The Optuna storage of the journal at ``path``, created with its directory if needed; one per path and
    process (the launcher and an in-process trial share it, and with it the journal replayed so far)."""
    key = str(Path(path).absolute())
    if key not in _storages:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        Path(key).parent.mkdir(parents=True, exist_ok=True)
        _storages[key] = JournalStorage(JournalFileBackend(key))
    return _storages[key]


@contextmanager
def study_lock(journal: Path, study: str) -> Iterator[None]:
    """Hold the study for this launcher: two launchers of the same command would each take the other's RUNNING
    trials for ones a killed launcher left, and run them again. A POSIX record lock (``lockf``): released when
    the process dies, however it dies, never inherited by the pool's forked workers, and honoured over NFS.

    :raises ConfigError: another live launcher holds it (its pid and command are named).
    """
    path = Path(journal).parent / "locks" / f"{study}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = " ".join(os.pread(fd, 4096, 0).decode(errors="replace").split())[:300] or "unknown"
            raise ConfigError(f"study {study!r} is being searched by another launcher ({holder}): wait for it to "
                              "end, or stop it; the same command then resumes the search") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


class OptunaTrial:
    """``ctx.trial`` of a trial's run: satisfies :class:`mlxcore.sweepers.base.Trial`.

    Optuna is imported, and the study loaded, at the first :meth:`report` or :meth:`should_prune`: a task that
    never reports (its trial's process a pool worker or a job of its own) pays nothing for them.
    """

    def __init__(self, record: dict[str, Any]) -> None:
        self.number: int = int(record["number"])
        self.params: dict[str, Any] = dict(record.get("params") or {})
        self._record = record
        self._trial: Any = None

    @property
    def pruned_exceptions(self) -> tuple[type[BaseException], ...]:
        """``optuna.TrialPruned``, which a task may raise instead of :class:`mlxcore.TrialPruned` (read only when
        the task raised: a process that never imported Optuna cannot have raised it)."""
        optuna = sys.modules.get("optuna")
        return (optuna.TrialPruned,) if optuna is not None else ()

    def _optuna_trial(self) -> Any:
        if self._trial is None:
            import optuna

            from .options import build_pruner

            record = self._record
            study = optuna.load_study(study_name=record["study"], storage=open_storage(record["storage"]),
                                      sampler=optuna.samplers.RandomSampler(),  # never samples here
                                      pruner=build_pruner(record.get("pruner") or {"name": "none"}))
            self._trial = optuna.trial.Trial(study, int(record["trial_id"]))
        return self._trial

    def report(self, value: float, step: int) -> None:
        """Tell the study the objective's value at ``step``: what the pruner compares across trials."""
        self._optuna_trial().report(float(value), int(step))

    def should_prune(self) -> bool:
        """The pruner's judgement now; the task then ``raise mlxcore.TrialPruned()`` (or ``optuna.TrialPruned``)."""
        return bool(self._optuna_trial().should_prune())

    def __repr__(self) -> str:
        return f"OptunaTrial(number={self.number}, study={self._record.get('study')!r}, params={self.params!r})"
