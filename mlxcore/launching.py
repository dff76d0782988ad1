"""``@mlxcore.launch``: from a decorated ``main(ctx)`` to runs, in this process or through a scheduler.

Decorating imports nothing heavy; hydra and omegaconf are imported when ``main()`` is called. A user error
(:class:`~mlxcore.errors.MlxcoreError`) prints one line and exits with code 2 (``MLXCORE_FULL_ERROR=1`` shows
the traceback). One failing sweep point does not stop the others; the exit code is 1 if any failed, 128+N
when signal N stopped the sweep.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, MlxcoreError

log = logging.getLogger(__name__)

SETTINGS_FILE = "mlx.yaml"
#: MLXP's settings file: refused when it would be the only one, so its settings are never silently ignored
OLD_SETTINGS_FILE = "mlxp.yaml"


def launch(config_path: str = "./configs", seeding_function: Callable[[Any], Any] | None = None) -> Callable:
    """Turn ``task(ctx)`` into a command-line program taking hydra-style overrides and sweeps.

    :param config_path: directory of ``config.yaml`` (created with ``seed: null`` when missing) and
        ``mlx.yaml``; a relative path is relative to the file that defines the task, as in hydra.
    :param seeding_function: called with ``config.seed`` before the task, in each run.
    """

    def decorator(task: Callable) -> Callable[..., None]:
        source = inspect.getsourcefile(task) or sys.argv[0]
        config_dir = Path(config_path)
        if not config_dir.is_absolute():
            config_dir = Path(source).absolute().parent / config_dir

        @functools.wraps(task)
        def main(argv: Sequence[str] | None = None) -> None:
            code = main_entry(task, config_dir, seeding_function, sys.argv[1:] if argv is None else list(argv))
            if code:
                sys.exit(code)

        return main

    return decorator


def full_error() -> bool:
    return os.environ.get("MLXCORE_FULL_ERROR", "") not in ("", "0")


@dataclasses.dataclass(frozen=True)
class LaunchTarget:
    """The launch running in this process: what a forked pool job needs to run one of its points."""

    task: Callable
    config_dir: Path
    seeding_function: Callable | None
    script: Path  #: the script that was started (``sys.argv[0]``); jobs running another script cannot fork

    def run(self, argv: list[str]) -> int:
        return main_entry(self.task, self.config_dir, self.seeding_function, argv)


_current: LaunchTarget | None = None


def current_launch() -> LaunchTarget | None:
    return _current


def main_entry(task: Callable, config_dir: Path, seeding_function: Callable | None, argv: list[str]) -> int:
    """Run the launch and turn user errors into one line on stderr; returns the process exit code."""
    global _current
    _current = LaunchTarget(task, config_dir, seeding_function, Path(sys.argv[0]).absolute())
    _configure_logging()
    try:
        return launch_runs(task, config_dir, seeding_function, argv)
    except MlxcoreError as exc:
        if full_error():
            raise
        print(f"mlxcore: error: {exc}", file=sys.stderr)
        return 2


def _configure_logging() -> None:
    root = logging.getLogger("mlxcore")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("mlxcore: %(message)s"))
        root.addHandler(handler)
        root.setLevel(os.environ.get("MLXCORE_LOG_LEVEL", "INFO").upper())
        root.propagate = False


def load_settings(config_dir: Path, overrides: list) -> Any:
    """``mlx.yaml`` (optional) with the ``mlx.*`` overrides applied, checked."""
    from .overrides import DELETE
    from .settings import build_settings, delete_dotted, set_dotted
    from .store import read_yaml

    path = config_dir / SETTINGS_FILE
    old = config_dir / OLD_SETTINGS_FILE
    if old.exists() and not path.exists():
        raise ConfigError(f"{old}: mlxcore reads its settings from {SETTINGS_FILE}, not MLXP's {OLD_SETTINGS_FILE}: "
                          f"rename it {SETTINGS_FILE} (and drop MLXP-only keys such as interactive_mode: see README, "
                          "'Coming from MLXP')")
    if old.exists():
        log.warning("%s is ignored: the settings are read from %s", old, path)
    data: dict[str, Any] = {}
    if path.exists():
        import yaml

        try:
            data = read_yaml(path) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of settings")
    for override in overrides:
        key = override.key[len("mlx."):] if override.key != "mlx" else ""
        if not key:
            raise ConfigError(f"{override.text!r}: give a setting, e.g. +mlx.logger.parent_log_dir=./logs")
        if override.kind == DELETE:
            delete_dotted(data, key)
        else:
            set_dotted(data, key, override.value)
    return build_settings(data)


def launch_runs(task: Callable, config_dir: Path, seeding_function: Callable | None, argv: list[str]) -> int:
    from .compose import Composer
    from .overrides import parse_command_line
    from .usage import check_flags, render, wants_help
    from .version_managers import take_handed_off

    if wants_help(argv):  # before anything is prepared, composed or written
        print(render(Path(sys.argv[0]).name, config_dir, argv), end="")
        return 0
    check_flags(argv)
    prepared = take_handed_off()  # re-executed by a launch that prepared the code already: never prepare twice
    plan = parse_command_line(argv, config_dir)
    settings = load_settings(config_dir, plan.mlx_overrides)
    from .settings import check_plugin_choices

    one_given_run = settings.logger.forced_log_id is not None and len(plan) == 1 and not plan.dimensions
    # an unknown logger, format, scheduler or sweeper fails before anything is written
    check_plugin_choices(settings, sweeper=not one_given_run)
    if not settings.use_logger:
        needing = [name for name, on in (("use_scheduler", settings.use_scheduler), ("skip_completed",
                   settings.skip_completed), ("rerun_failed", settings.rerun_failed), ("logger.forced_log_id",
                   settings.logger.forced_log_id is not None)) if on]
        if needing:
            raise ConfigError(f"mlx.use_logger=false writes no run, so mlx.{needing[0]} cannot be used with it")
    composer = Composer(config_dir)
    if prepared is None and settings.use_version_manager:
        prepared = _prepare_code(settings)
        os.environ.update(prepared.env)
    if not settings.use_scheduler and prepared is not None and _reexec_needed(prepared):
        _reexec(prepared, settings)  # does not return
    return _sweep(task, plan, settings, composer, seeding_function, prepared, one_given_run)


def _sweep(task: Callable, plan: Any, settings: Any, composer: Any, seeding_function: Callable | None,
           prepared: Any, one_given_run: bool) -> int:
    """Hand the plan to the selected sweeper (``grid`` unless ``mlx.sweeper.name`` says otherwise). A job of a
    sweep (one point, into its given run) runs that point whatever the sweeper: the sweeper that chose it is the
    launch's, recorded in the run's settings, and what the job's ``ctx.trial`` needs is in the run's info."""
    from .plugins import get_sweeper_class
    from .sweepers.runner import SweepInterrupted, TrialRunner

    if one_given_run:
        # one given run: a job of a sweep (a search's trial among them) runs its point; nothing is left to choose
        from .sweepers.grid import GridSweeper

        sweeper: Any = GridSweeper()
    else:
        sweeper = get_sweeper_class(settings.sweeper.name).from_settings(settings.sweeper.options)
    runner = TrialRunner(task, settings, composer, seeding_function, prepared, plan.mlx_overrides)
    try:
        return sweeper.sweep(plan, runner)
    except SweepInterrupted as exc:
        log.warning("the %s sweep was interrupted (signal %d); run the same command again to resume it",
                    settings.sweeper.name, exc.signum)
        return 128 + exc.signum


def _prepare_code(settings: Any) -> Any:
    from .plugins import get_version_manager_class

    manager = get_version_manager_class(settings.version_manager.name).from_settings(settings.version_manager.options)
    return manager.prepare(Path(sys.argv[0]).absolute(), interactive=sys.stdin is not None and sys.stdin.isatty())


REEXEC_MARKER = "MLXCORE_PREPARED_CODE"


def _reexec_needed(prepared: Any) -> bool:
    return os.environ.get(REEXEC_MARKER) != str(prepared.workdir) and prepared.script != Path(sys.argv[0]).absolute()


def _reexec(prepared: Any, settings: Any) -> None:
    """Run the prepared copy of the script instead of this one (same arguments, same interpreter); the new
    process inherits ``prepared`` and writes the same logs directory even when its working directory differs."""
    from .overrides import pinned_log_dir
    from .version_managers import hand_off

    argv = [*sys.argv[1:], *pinned_log_dir(prepared.workdir, settings.log_dir_root)]
    os.environ[REEXEC_MARKER] = str(prepared.workdir)
    hand_off(prepared)
    os.chdir(prepared.workdir)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, str(prepared.script), *argv])
