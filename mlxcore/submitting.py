"""``+mlx.use_scheduler=true``: give every sweep point a SUBMITTED run (through the run store) and submit them.

Each job re-runs the same script with the point's overrides, the framework overrides of the command line,
``+mlx.logger.forced_log_id=<id>`` (so the job writes into the run made here) and ``+mlx.use_scheduler=false``.
Every point's config is composed, resolved, checked and identified here before any run is written, so a bad
override fails with nothing written, and each run records its config at once; the job starting it checks that
it runs that config. The new runs are then made in one go (:meth:`~mlxcore.store.batch.SubmissionBatch.create`:
a 10,000-point sweep is submitted in seconds) and if the submission fails, nothing stays behind. Scheduler
options that interpolate the config (:mod:`mlxcore.schedulers.resources`) are resolved per point, and the points
are submitted as one array per distinct set of options; each run's submission record keeps the options it was
given.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import store
from .compose import Composer
from .errors import ConfigError
from .identity import PointFilter, config_identity
from .overrides import ConfigOverride, SweepPlan, pinned_log_dir
from .plugins import get_scheduler_class
from .schedulers.base import JobSpec, Scheduler
from .schedulers.resources import PointResources, group_key, without_templates
from .schedulers.submission import submit_jobs
from .session import check_config_keys, sweep_info
from .settings import Settings
from .store import RunStore, layout
from .store.batch import SubmissionBatch
from .store.lease import process_record
from .version_managers import PreparedCode

log = logging.getLogger(__name__)


@dataclass
class Submitted:
    """What :func:`submit_points` did."""

    code: int  #: the launch's exit code (the local pool runs its jobs before returning it)
    runs: list[tuple[int, Path]] = field(default_factory=list)  #: each submitted point's run, in order


#: one point to submit: its overrides, fields added to its run's info, and the run to submit it into (``None``: new)
PointToSubmit = tuple[list[ConfigOverride], dict[str, Any] | None, int | None]


def submit_plan(plan: SweepPlan, settings: Settings, composer: Composer, prepared: PreparedCode | None) -> int:
    if settings.logger.forced_log_id is not None and len(plan) > 1:
        raise ConfigError("mlx.logger.forced_log_id cannot be combined with a sweep of several points")
    points = ((overrides, None, None) for overrides in plan.points())
    return submit_points(points, plan.mlx_overrides, settings, composer, prepared).code


def submit_points(points: Iterable[PointToSubmit], mlx_overrides: list[ConfigOverride], settings: Settings,
                  composer: Composer, prepared: PreparedCode | None, *, filter_points: bool = True) -> Submitted:
    """Give each point a SUBMITTED run and submit them; with the local pool, run them before returning.

    :param filter_points: apply ``skip_completed``/``rerun_failed`` (a sweeper's trials are never filtered: the
        sweeper decides what runs).
    """
    scheduler_class = get_scheduler_class(settings.scheduler.name)
    resources = PointResources(settings.scheduler.options)
    schedulers: dict[str, Scheduler] = {}  # one per distinct set of options
    groups: dict[str, list[JobSpec]] = {}
    given: dict[str, dict] = {}  # the per-point options of each group, for the runs' submission records
    scheduler = scheduler_class.from_settings(without_templates(settings.scheduler.options))
    scheduler.check_available()
    script = prepared.script if prepared else Path(sys.argv[0]).absolute()
    workdir = prepared.workdir if prepared else Path.cwd()
    # the settings each job gets from here, not from the command line: its argv (kept in its info) then holds
    # no contradictory pair such as +mlx.use_scheduler=true ... +mlx.use_scheduler=false
    managed = {"mlx.use_scheduler", "mlx.skip_completed", "mlx.rerun_failed", "mlx.logger.forced_log_id"}
    if prepared is not None:
        managed |= {"mlx.use_version_manager", "mlx.logger.parent_log_dir"}
    mlx_texts = [o.text for o in mlx_overrides if o.key not in managed]
    # the jobs must not filter again: each would rescan the whole logs directory
    mlx_texts += ["+mlx.skip_completed=false", "+mlx.rerun_failed=false"]
    if prepared is not None:  # the code was prepared (and recorded in each run) here: the jobs run it as it is
        mlx_texts += ["+mlx.use_version_manager=false", *pinned_log_dir(workdir, settings.log_dir_root)]
    job_settings = dict(settings.to_dict(), use_scheduler=False)
    metadata = {layout.SETTINGS: job_settings, **(prepared.files if prepared else {})}
    submitter = process_record()  # a run left SUBMITTED with no job once this process is gone: never submitted
    point_filter = PointFilter(settings if filter_points else dataclasses.replace(
        settings, skip_completed=False, rerun_failed=False))
    # first every point's config, checks, identity and options: a bad point fails before any run is written
    ready: list[tuple[list, dict, dict, int | None, str]] = []  # overrides, config, info, forced id, group
    for overrides, extra_info, into in points:
        resolved = composer.resolved(overrides)
        check_config_keys(resolved)
        identity = config_identity(resolved)
        run_it, forced_id = point_filter.decide(identity)
        if not run_it:
            continue
        info = {"overrides": [o.text for o in overrides], "submit_argv": list(sys.argv),
                "submit_time": store.now_iso(), "submitter": submitter, "config_identity": identity, **sweep_info(),
                **({"version": dict(prepared.record)} if prepared else {}), **(extra_info or {})}
        options = resources.for_point(resolved, " ".join(o.text for o in overrides))
        key = group_key(options)
        if key not in schedulers:
            try:
                schedulers[key] = scheduler_class.from_settings(options) if resources else scheduler
            except ConfigError as exc:  # a per-point value: name the point it came from
                raise ConfigError(f"{exc} (point {' '.join(o.text for o in overrides)})") from None
            given[key] = {name: options[name] for name in resources.templated}
        ready.append((overrides, resolved, info, into or forced_id or settings.logger.forced_log_id, key))
    batch = SubmissionBatch(RunStore(settings.log_dir_root))
    jobs: list[JobSpec] = []
    try:  # then the runs: the new ones in one go (SubmissionBatch.create), the forced ids one by one
        fresh = iter(batch.create([(p[2], p[1]) for p in ready if p[3] is None], metadata))
        for overrides, resolved, info, forced, key in ready:
            run = next(fresh) if forced is None else batch.add(
                info, metadata, resolved, log_id=forced, allow_config_change=settings.allow_config_change)
            command = [sys.executable, str(script), *[o.text for o in overrides], *mlx_texts,
                       f"+mlx.logger.forced_log_id={run.log_id}", "+mlx.use_scheduler=false"]
            job = JobSpec(run.log_id, run.root, command, workdir, name=f"mlxcore-{run.log_id}")
            jobs.append(job)
            groups.setdefault(key, []).append(job)
    except BaseException:
        batch.abandon()
        raise
    point_filter.report()
    if not jobs:
        log.info("nothing to submit")
        return Submitted(0)
    try:
        # all of the sweep fits in the cluster's limits, or none is sent (a pack of points is one job)
        scheduler.check_capacity(sum(schedulers[key].jobs_for(len(groups[key])) for key in groups))
    except BaseException:
        batch.abandon()
        raise
    env_lines = [f"export {name}={shlex.quote(value)}" for name, value in (prepared.env if prepared else {}).items()]
    job_ids: list[str] = []
    ordered = list(groups)
    for number, key in enumerate(ordered):
        try:
            job_ids += submit_jobs(schedulers[key], groups[key], settings.log_dir_root, setup_lines=env_lines,
                                   abandon=batch.abandon, resources=given[key] or None)
        except BaseException:  # the groups after it were never sent: nothing of them stays behind
            batch.abandon([job.run_dir for later in ordered[number + 1:] for job in groups[later]])
            raise
    ids = ", ".join(str(job.log_id) for job in jobs[:3]) + (f", ... {jobs[-1].log_id}" if len(jobs) > 3 else "")
    distinct = list(dict.fromkeys(job_ids))  # the points of a pack share its job
    log.info("submitted %d run(s) (log ids %s) to %s: job ids %s", len(jobs), ids, scheduler.name,
             ", ".join(distinct[:3]) + (", ..." if len(distinct) > 3 else ""))
    codes = [s.wait() for s in dict.fromkeys(schedulers[key] for key in ordered)]  # the local pool runs jobs here
    return Submitted(next((code for code in codes if code), 0), [(job.log_id, job.run_dir) for job in jobs])

