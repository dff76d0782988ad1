"""``mlxcore status --summary``: per sweep and status, how many runs, how long they ran and what they cost.

A sweep is what one launch (or one ``mlxcore sub``) created: its runs share ``info.sweep``. A run's elapsed
time, CPU-hours and GPU-hours come from its scheduler's accounting when the scheduler keeps one (SLURM's
``sacct``, OAR's job records: what the cluster bills), else from the run's own record (its duration times
what it was given). A total over runs some of which are not known says how many it counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..schedulers.observe import RunState


@dataclass
class Total:
    """One sum, and how many of the runs it should cover it does cover."""

    value: float = 0.0
    known: int = 0
    runs: int = 0

    def add(self, value: Any) -> None:
        self.runs += 1
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.value += float(value)
            self.known += 1

    def text(self, hours: bool) -> str:
        if not self.known:
            return "-"
        shown = f"{self.value:.2f}" if hours else _clock(self.value)
        return shown if self.known == self.runs else f"{shown} ({self.known}/{self.runs})"


@dataclass
class Group:
    sweep: str
    command: str
    status: str
    runs: int = 0
    elapsed: Total = field(default_factory=Total)
    cpu_hours: Total = field(default_factory=Total)
    gpu_hours: Total = field(default_factory=Total)

    def row(self) -> dict[str, Any]:
        return {"sweep": self.sweep, "command": self.command, "status": self.status, "runs": self.runs,
                "elapsed_s": self.elapsed.value if self.elapsed.known else None,
                "cpu_hours": self.cpu_hours.value if self.cpu_hours.known else None,
                "gpu_hours": self.gpu_hours.value if self.gpu_hours.known else None,
                "known": {"elapsed_s": self.elapsed.known, "cpu_hours": self.cpu_hours.known,
                          "gpu_hours": self.gpu_hours.known}}


def cost_of(state: RunState) -> tuple[Any, Any, Any]:
    """``(elapsed seconds, CPU-hours, GPU-hours)`` of one run: accounting first, else its own record."""
    usage, info = state.usage, state.info
    elapsed = usage.elapsed_s if usage and usage.elapsed_s is not None else info.get("duration_s")
    cpu = usage.cpu_hours if usage and usage.cpu_hours is not None else info.get("cpu_hours")
    gpu = usage.gpu_hours if usage and usage.gpu_hours is not None else info.get("gpu_hours")
    return elapsed, cpu, gpu


def summarize(states: list[RunState]) -> list[Group]:
    groups: dict[tuple[str, str], Group] = {}
    for state in states:
        sweep = str(state.info.get("sweep") or "-")
        key = (sweep, state.status)
        if key not in groups:
            groups[key] = Group(sweep, str(state.info.get("sweep_command") or ""), state.status)
        group = groups[key]
        group.runs += 1
        elapsed, cpu, gpu = cost_of(state)
        group.elapsed.add(elapsed)
        group.cpu_hours.add(cpu)
        group.gpu_hours.add(gpu)
    return sorted(groups.values(), key=lambda g: (g.sweep, g.status))


def summary_table(states: list[RunState]) -> str:
    from .query_command import format_table

    groups = summarize(states)
    rows = []
    shown = None
    for group in groups:
        first = group.sweep != shown
        shown = group.sweep
        command = group.command if len(group.command) <= 50 else group.command[:47] + "..."
        rows.append((group.sweep if first else "", command if first else "", group.status, group.runs,
                     group.elapsed.text(False), group.cpu_hours.text(True), group.gpu_hours.text(True)))
    names = ["sweep", "command", "status", "runs", "elapsed", "cpu-hours", "gpu-hours"]
    sweeps = len({g.sweep for g in groups})
    return f"{format_table(names, rows)}\n{len(states)} run(s) in {sweeps} sweep(s)"


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
