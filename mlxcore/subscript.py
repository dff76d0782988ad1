"""``mlxcore sub job.sh`` (also ``mlxsub job.sh``): submit a batch script's sweeps with mlxcore run directories.

The script is read, **never executed** on the submitting machine:

- directive lines (the scheduler's :attr:`~mlxcore.schedulers.base.Scheduler.directive_prefix`: ``#SBATCH``,
  ``#OAR``, ...) become the scheduler's native options; the scheduler is the one whose prefix the script uses
  (or ``--scheduler``);
- each ``python SCRIPT.py OVERRIDES`` (or ``python -m MODULE OVERRIDES``) line, ``\\`` continuations joined,
  is a sweep: its overrides are expanded with the launch grammar (``a=1,2 b=3,4`` is four points) and each
  point becomes one job running ``python SCRIPT.py <point> +mlx.logger.forced_log_id=<id>`` in its own run
  directory (status SUBMITTED). Words before ``python`` (``srun``, ``env X=1``) are kept;
- every other line (``module load``, ``source .venv/bin/activate``, ``export X=...``) is kept, in order, and
  run by each job before its command (in the directory ``mlxcore sub`` was called from);
- all points of all python lines are submitted together (one array by default).

Run directories go to ``--logs``, else the ``+mlx.logger.parent_log_dir`` of the python line, else the
``logger.parent_log_dir`` of ``configs/mlx.yaml`` next to the python script, else ``./logs``.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .errors import ConfigError, MlxcoreError
from .overrides import hydra_quote

PYTHON_WORD = re.compile(r"python[0-9.]*")
#: framework overrides ``mlxcore sub`` sets itself for every job
MANAGED_MLX = ("mlx.logger.parent_log_dir", "mlx.logger.forced_log_id", "mlx.use_scheduler")


@dataclass
class SweepLine:
    """One ``python ...`` line of a batch script."""

    lineno: int
    text: str
    launcher: list[str]  #: the words up to and including the interpreter, e.g. ``["srun", "python"]``
    target: list[str]  #: ``["main.py"]`` or ``["-m", "pkg.main"]``
    args: list[str]  #: the overrides as written


@dataclass
class BatchScript:
    path: Path
    prefix: str
    directives: list[str] = field(default_factory=list)  #: native options, prefix removed
    sweeps: list[SweepLine] = field(default_factory=list)
    setup_lines: list[str] = field(default_factory=list)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first line number, line)`` with backslash continuations joined."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            buffer += raw[:-1] + " "
            continue
        out.append((start, buffer + raw))
        buffer = ""
    if buffer:
        out.append((start, buffer))
    return out


def parse_sweep_line(lineno: int, line: str) -> SweepLine | None:
    """The sweep of ``line``, or ``None`` when it does not run a python script or module."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    for i, word in enumerate(words):
        if PYTHON_WORD.fullmatch(os.path.basename(word)):
            rest = words[i + 1 :]
            if len(rest) >= 2 and rest[0] == "-m":
                return SweepLine(lineno, line, words[: i + 1], rest[:2], rest[2:])
            if rest and rest[0].endswith(".py"):
                return SweepLine(lineno, line, words[: i + 1], rest[:1], rest[1:])
            return None
    return None


def parse_script(path: Path, prefixes: dict[str, str], forced: str | None = None) -> tuple[str, BatchScript]:
    """Split ``path`` into directives, sweeps and setup lines; returns the scheduler name too.

    :param prefixes: scheduler name -> directive prefix, for every scheduler that has one.
    :param forced: the scheduler to use (``--scheduler``), else the one whose prefix the script uses.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = logical_lines(text)
    if forced is None:
        used = sorted({name for name, prefix in prefixes.items()
                       for _, line in lines if _directive(line, prefix) is not None})
        if len(used) != 1:
            found = f"directives of {', '.join(used)}" if used else "no scheduler directive"
            valid = ", ".join(f"{p} ({n})" for n, p in sorted(prefixes.items())) or "none installed"
            raise ConfigError(f"{path}: {found}; say which scheduler with --scheduler (directive prefixes: {valid})")
        forced = used[0]
    prefix = prefixes.get(forced, "")
    script = BatchScript(path, prefix)
    for number, line in lines:
        stripped = line.strip()
        if number == 1 and stripped.startswith("#!"):
            continue
        directive = _directive(line, prefix) if prefix else None
        if directive is not None:
            if directive:
                script.directives.append(directive)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        sweep = parse_sweep_line(number, line)
        if sweep is not None:
            script.sweeps.append(sweep)
        else:
            script.setup_lines.append(line)
    if not script.sweeps:
        raise ConfigError(f"{path}: no 'python SCRIPT.py ...' or 'python -m MODULE ...' line to submit")
    return forced, script


def _directive(line: str, prefix: str) -> str | None:
    stripped = line.strip()
    if prefix and stripped.startswith(prefix) and (len(stripped) == len(prefix) or stripped[len(prefix)].isspace()):
        return stripped[len(prefix) :].strip()
    return None


@dataclass
class PlannedJob:
    sweep: SweepLine
    overrides: list[str]  #: the point's overrides plus the line's own framework overrides
    logs: Path

    def command(self, log_id: int | str) -> list[str]:
        return [*self.sweep.launcher, *self.sweep.target, *self.overrides,
                f"+mlx.logger.parent_log_dir={hydra_quote(str(self.logs))}", f"+mlx.logger.forced_log_id={log_id}",
                "+mlx.use_scheduler=false"]


def plan_jobs(script: BatchScript, logs: Path | None) -> list[PlannedJob]:
    """Expand every sweep line into its points (nothing is created)."""
    from .overrides import parse_command_line

    jobs: list[PlannedJob] = []
    for sweep in script.sweeps:
        target_dir = Path(sweep.target[0]).parent if sweep.target[0] != "-m" else Path(".")
        try:
            plan = parse_command_line(sweep.args, target_dir / "configs")
        except ConfigError as exc:
            raise ConfigError(f"{script.path}:{sweep.lineno}: {exc}") from None
        line_logs = logs
        mlx_texts = []
        for override in plan.mlx_overrides:
            if override.key == "mlx.logger.parent_log_dir" and line_logs is None:
                line_logs = Path(str(override.value))
            if override.key not in MANAGED_MLX:
                mlx_texts.append(override.text)
        if line_logs is None:
            line_logs = _configured_logs(target_dir)
        line_logs = line_logs.expanduser().absolute()
        for point in plan.points():
            jobs.append(PlannedJob(sweep, [o.text for o in point] + mlx_texts, line_logs))
    return jobs


def _configured_logs(target_dir: Path) -> Path:
    settings = target_dir / "configs" / "mlx.yaml"
    if settings.exists():
        from .store import read_yaml

        try:
            data = read_yaml(settings) or {}
            value = (data.get("logger") or {}).get("parent_log_dir")
            if value:
                return Path(str(value))
        except Exception:  # noqa: BLE001 - an unreadable mlx.yaml only loses its default; the launch reports it
            pass
    return Path("logs")


def submit_script(path: Path, *, scheduler_name: str | None = None, logs: Path | None = None,
                  options: dict[str, Any] | None = None, dry_run: bool = False, echo=print) -> list[str]:
    """Parse, expand and submit ``path``; returns the job ids (none for a dry run)."""
    from . import store
    from .plugins import get_plugin_manager, get_scheduler_class
    from .schedulers.base import JobSpec
    from .schedulers.submission import submit_jobs
    from .session import sweep_info
    from .store import RunStore
    from .store.batch import SubmissionBatch
    from .store.lease import process_record

    registry = get_plugin_manager().registry("schedulers")
    prefixes = {name: get_scheduler_class(name).directive_prefix for name in registry.names()}
    if scheduler_name is not None:
        get_scheduler_class(scheduler_name)  # unknown name: error listing the valid ones
    name, script = parse_script(path, {n: p for n, p in prefixes.items() if p}, scheduler_name)
    scheduler = get_scheduler_class(name).from_settings({**(options or {}), "options": script.directives})
    planned = plan_jobs(script, logs)
    if dry_run:
        echo(f"would submit {len(planned)} job(s) to {name}"
             + (" as one array" if scheduler.use_array and len(planned) > 1 else ""))
        for directive in script.directives:
            echo(f"  directive: {directive}")
        for line in script.setup_lines:
            echo(f"  setup:     {line}")
        for index, job in enumerate(planned, 1):
            echo(f"  job {index}: (logs {job.logs}) {shlex.join(job.command('<id>'))}")
        return []
    scheduler.check_available()
    batches: dict[Path, SubmissionBatch] = {}
    groups: dict[Path, list[JobSpec]] = {}
    specs: list[JobSpec] = []
    try:
        for job in planned:
            batch = batches.setdefault(job.logs, SubmissionBatch(RunStore(job.logs)))
            info = {"overrides": job.overrides, "submit_argv": list(sys.argv), "submit_time": store.now_iso(),
                    "submitter": process_record(), **sweep_info(),
                    "batch_script": str(path.absolute()), "batch_line": job.sweep.lineno}
            run = batch.add(info, {}, None)  # the config is recorded by the job when it starts
            command = job.command(run.log_id)
            run.update_info(command=command)
            spec = JobSpec(run.log_id, run.root, command, Path.cwd(), name=f"mlxcore-{run.log_id}")
            specs.append(spec)
            groups.setdefault(job.logs, []).append(spec)
        # all of it fits in the cluster's limits, or none is sent (a pack of points is one job)
        scheduler.check_capacity(sum(scheduler.jobs_for(len(group)) for group in groups.values()))
    except BaseException:
        for batch in batches.values():
            batch.abandon()
        raise
    job_ids: list[str] = []
    pending = list(groups.items())  # one submission per logs directory (usually a single one)
    try:
        while pending:
            parent, group = pending[0]
            job_ids += submit_jobs(scheduler, group, parent, setup_lines=script.setup_lines,
                                   abandon=batches[parent].abandon)
            pending.pop(0)
    except BaseException:  # submit_jobs undid the failed group; the later ones were never submitted
        for parent, _ in pending[1:]:
            batches[parent].abandon()
        raise
    first, last = specs[0].log_id, specs[-1].log_id
    distinct = list(dict.fromkeys(job_ids))  # the points of a pack share its job
    echo(f"submitted {len(specs)} run(s) (log ids {first}{'' if first == last else f'-{last}'}) to {name}: "
         f"job ids {', '.join(distinct[:3])}{', ...' if len(distinct) > 3 else ''}")
    return job_ids


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: give KEY=VALUE, e.g. --set array_throttle=10")
        out[key.strip()] = yaml.safe_load(value) if value else None
    return out


@click.command("sub")
@click.argument("script", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would be submitted; create and submit nothing.")
@click.option("--scheduler", "scheduler_name",
              help="The scheduler (default: the one whose directives the script uses).")
@click.option("--logs", type=click.Path(file_okay=False, path_type=Path), help="Where run directories are created.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A scheduler option, as in mlx.scheduler (e.g. array_throttle=10, time=60); repeatable.")
@click.option("--no-array", is_flag=True, help="One job per point instead of one array.")
def sub_command(script: Path, dry_run: bool, scheduler_name: str | None, logs: Path | None,
                sets: tuple[str, ...], no_array: bool) -> None:
    """Submit the python sweeps of a batch SCRIPT (never executed here) as jobs with mlxcore run directories."""
    options = _parse_sets(sets)
    if no_array:
        options["array"] = False
    submit_script(script, scheduler_name=scheduler_name, logs=logs, options=options, dry_run=dry_run, echo=click.echo)


def main() -> None:
    """The ``mlxsub`` console script: ``mlxcore sub`` on its own."""
    import logging

    logging.basicConfig(format="mlxsub: %(message)s", level=os.environ.get("MLXCORE_LOG_LEVEL", "WARNING").upper())
    try:
        sub_command.main(prog_name="mlxsub", standalone_mode=False)
    except MlxcoreError as exc:
        if os.environ.get("MLXCORE_FULL_ERROR", "") not in ("", "0"):
            raise
        click.echo(f"mlxsub: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
