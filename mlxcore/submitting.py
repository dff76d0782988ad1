"""``+mlx.use_scheduler=true``: give every sweep point a run directory (status SUBMITTED) and submit them.

Each job re-runs the same script with the point's overrides, the framework overrides of the command line,
``+mlx.logger.forced_log_id=<id>`` (so the job writes into the directory made here) and
``+mlx.use_scheduler=false``. The config is composed and resolved here, so a bad override fails before
anything is submitted.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import sys
from pathlib import Path

from . import runs
from .compose import Composer, resolve
from .errors import ConfigError
from .identity import PointFilter, config_identity
from .overrides import SweepPlan
from .plugins import get_logger_class, get_scheduler_class
from .schedulers.base import JobSpec
from .schedulers.submission import submit_jobs
from .settings import Settings
from .version_managers import PreparedCode, write_record

log = logging.getLogger(__name__)


def submit_plan(plan: SweepPlan, settings: Settings, composer: Composer, prepared: PreparedCode | None) -> int:
    from .launching import pinned_log_dir, with_forced_id

    if settings.logger.forced_log_id is not None and len(plan) > 1:
        raise ConfigError("mlx.logger.forced_log_id cannot be combined with a sweep of several points")
    scheduler = get_scheduler_class(settings.scheduler.name).from_settings(settings.scheduler.options)
    scheduler.check_available()
    logger_cls = get_logger_class(settings.logger.name)
    script = prepared.script if prepared else Path(sys.argv[0]).absolute()
    workdir = prepared.workdir if prepared else Path.cwd()
    mlx_texts = [o.text for o in plan.mlx_overrides]
    # the jobs must not filter again: each would rescan the whole logs directory
    mlx_texts += ["+mlx.skip_completed=false", "+mlx.rerun_failed=false"]
    if prepared is not None:  # the code was prepared (and recorded in each run) here: the jobs run it as it is
        mlx_texts += ["+mlx.use_version_manager=false", *pinned_log_dir(workdir, settings)]
    job_settings = dict(settings.to_dict(), use_scheduler=False)
    point_filter = PointFilter(settings)
    jobs: list[JobSpec] = []
    try:
        for overrides in plan.points():
            resolved = resolve(composer.compose(overrides))
            identity = config_identity(resolved)
            run_it, forced_id = point_filter.decide(identity)
            if not run_it:
                continue
            logger = logger_cls.open(with_forced_id(settings, forced_id or settings.logger.forced_log_id).logger)
            logger.write_metadata("config", resolved)
            logger.write_metadata("mlx", job_settings)
            version = write_record(logger.log_dir, prepared) if prepared else None
            logger.update_info(
                log_id=logger.log_id, log_dir=str(logger.log_dir), status=runs.SUBMITTED,
                overrides=[o.text for o in overrides], submit_argv=list(sys.argv), submit_time=runs.now_iso(),
                config_identity=identity,
                **({"version": version} if version else {}),
            )
            command = [sys.executable, str(script), *[o.text for o in overrides], *mlx_texts,
                       f"+mlx.logger.forced_log_id={logger.log_id}", "+mlx.use_scheduler=false"]
            jobs.append(JobSpec(logger.log_id, logger.log_dir, command, workdir, name=f"mlxcore-{logger.log_id}"))
    except BaseException:
        for job in jobs:
            shutil.rmtree(job.run_dir, ignore_errors=True)
        raise
    point_filter.report()
    if not jobs:
        log.info("nothing to submit")
        return 0
    env_lines = [f"export {name}={shlex.quote(value)}" for name, value in (prepared.env if prepared else {}).items()]
    job_ids = submit_jobs(scheduler, jobs, settings.log_dir_root, setup_lines=env_lines)
    ids = ", ".join(str(job.log_id) for job in jobs[:3]) + (f", ... {jobs[-1].log_id}" if len(jobs) > 3 else "")
    log.info("submitted %d run(s) (log ids %s) to %s: job ids %s", len(jobs), ids, scheduler.name,
             ", ".join(job_ids[:3]) + (", ..." if len(job_ids) > 3 else ""))
    code = scheduler.wait()  # the foreground local pool runs the jobs here
    return code or 0

