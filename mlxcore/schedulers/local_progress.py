"""Live progress of the foreground local pool: done / running / failed / queued and an ETA (rich).

Quiet when stderr is not a terminal: then only a one-line summary is logged at the end.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger("mlxcore.schedulers.local")


class Progress:
    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                          TextColumn("ETA"), TimeRemainingColumn(), transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task("runs", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def update(self, pool: Any) -> None:
        if self._progress is None:
            return
        codes = pool.exit_codes
        done = sum(1 for c in codes.values() if c == 0)
        failed = sum(1 for c in codes.values() if c not in (0, None))
        total = len(codes) + len(pool.running) + len(pool.queue)
        description = (f"[green]{done} done[/] · {len(pool.running)} running · [red]{failed} failed[/] · "
                       f"{len(pool.queue)} queued")
        self._progress.update(self._task, total=total, completed=len(codes), description=description)

    @staticmethod
    def summary(codes: dict[str, int | None], stop_signal: int | None) -> None:
        done = sum(1 for c in codes.values() if c == 0)
        failed = sum(1 for c in codes.values() if c not in (0, None))
        never = sum(1 for c in codes.values() if c is None)
        text = f"{len(codes)} run(s): {done} done, {failed} failed or interrupted"  # done: COMPLETE or PRUNED
        if never:
            text += f", {never} never started (marked CANCELLED; re-issue with +mlx.skip_completed=true to run them)"
        (log.warning if failed or never or stop_signal else log.info)(text)
