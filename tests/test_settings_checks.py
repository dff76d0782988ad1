"""Every ``mlx.*`` setting is typed and range-checked before anything is written: one line naming the setting,
the bad value and what is valid (unit tests of the checks, then real scripts given bad overrides)."""

from __future__ import annotations

import math

import pytest

from mlxcore.errors import ConfigError, UnknownChoiceError
from mlxcore.schedulers.base import GenericOptions
from mlxcore.schedulers.local import LocalScheduler
from mlxcore.settings import build_settings, check_plugin_choices
from mlxcore.settings_checks import duration_seconds

# (settings data, exact error class, setting named, value text shown)
BAD_SETTINGS = [
    ({"logger": {"parent_log_dir": ""}}, ConfigError, "mlx.logger.parent_log_dir", "''"),
    ({"logger": {"parent_log_dir": "   "}}, ConfigError, "mlx.logger.parent_log_dir", "'   '"),
    ({"logger": {"flush_interval": 1e308}}, ConfigError, "mlx.logger.flush_interval", "1e+308"),
    ({"logger": {"flush_interval": 0}}, ConfigError, "mlx.logger.flush_interval", "0.0"),
    ({"logger": {"flush_interval": -1.0}}, ConfigError, "mlx.logger.flush_interval", "-1.0"),
    ({"logger": {"flush_interval": math.nan}}, ConfigError, "mlx.logger.flush_interval", "nan"),
    ({"logger": {"flush_interval": math.inf}}, ConfigError, "mlx.logger.flush_interval", "inf"),
    ({"logger": {"flush_interval": 0.001}}, ConfigError, "mlx.logger.flush_interval", "0.001"),
    ({"logger": {"flush_interval": "abc"}}, ConfigError, "mlx.logger.flush_interval", "'abc'"),
    ({"logger": {"heartbeat_interval": 1e308}}, ConfigError, "mlx.logger.heartbeat_interval", "1e+308"),
    ({"logger": {"heartbeat_interval": 0}}, ConfigError, "mlx.logger.heartbeat_interval", "0.0"),
    ({"logger": {"heartbeat_interval": -5.0}}, ConfigError, "mlx.logger.heartbeat_interval", "-5.0"),
    ({"logger": {"heartbeat_interval": math.nan}}, ConfigError, "mlx.logger.heartbeat_interval", "nan"),
    ({"logger": {"heartbeat_interval": -math.inf}}, ConfigError, "mlx.logger.heartbeat_interval", "-inf"),
    ({"logger": {"heartbeat_interval": 0.5}}, ConfigError, "mlx.logger.heartbeat_interval", "0.5"),
    ({"logger": {"forced_log_id": 0}}, ConfigError, "mlx.logger.forced_log_id", "0"),
    ({"logger": {"forced_log_id": -3}}, ConfigError, "mlx.logger.forced_log_id", "-3"),
    ({"logger": {"forced_log_id": True}}, ConfigError, "mlx.logger.forced_log_id", "True"),
    ({"logger": {"forced_log_id": "7"}}, ConfigError, "mlx.logger.forced_log_id", "'7'"),
    ({"stop_signals": ["SIGKILL"]}, ConfigError, "mlx.stop_signals", "'SIGKILL'"),
    ({"stop_signals": ["SIGUSR1", "SIGSTOP"]}, ConfigError, "mlx.stop_signals", "'SIGSTOP'"),
    ({"stop_signals": ["SIGINT"]}, ConfigError, "mlx.stop_signals", "'SIGINT'"),
    ({"stop_signals": ["SIGTERM"]}, ConfigError, "mlx.stop_signals", "'SIGTERM'"),
    ({"stop_signals": ["SIGCHLD"]}, ConfigError, "mlx.stop_signals", "'SIGCHLD'"),
    ({"stop_signals": ["SIGFOO"]}, UnknownChoiceError, "mlx.stop_signals", "'SIGFOO'"),
    ({"stop_signals": ["USR1"]}, UnknownChoiceError, "mlx.stop_signals", "'USR1'"),
    ({"stop_signals": "SIGUSR1"}, ConfigError, "mlx.stop_signals", "'SIGUSR1'"),
]


def _ids(cases: list) -> list[str]:
    return [f"{setting}={value}" for _, _, setting, value in cases]


def _assert_one_line(exc: BaseException, kind: type, setting: str, value: str) -> str:
    message = str(exc)
    assert type(exc) is kind, f"{type(exc).__name__}: {message}"
    assert setting in message and value in message, message
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("data", "kind", "setting", "value"), BAD_SETTINGS, ids=_ids(BAD_SETTINGS))
def test_build_settings_refuses(data, kind, setting, value):
    with pytest.raises(ConfigError) as info:
        build_settings(data)
    _assert_one_line(info.value, kind, setting, value)


def test_range_errors_say_the_valid_range_and_choices():
    with pytest.raises(ConfigError, match=r"in \[0\.01, 3600\]"):
        build_settings({"logger": {"flush_interval": 1e308}})
    with pytest.raises(ConfigError, match=r"in \[1, 3600\]"):
        build_settings({"logger": {"heartbeat_interval": 0}})
    with pytest.raises(ConfigError, match=r"cannot be caught; valid: .*SIGUSR1, SIGUSR2"):
        build_settings({"stop_signals": ["SIGKILL"]})
    with pytest.raises(UnknownChoiceError, match=r"did you mean 'SIGUSR1'"):
        build_settings({"stop_signals": ["USR1"]})


@pytest.mark.parametrize("data", [
    {},
    {"logger": {"flush_interval": 0.5, "heartbeat_interval": 1}},
    {"logger": {"flush_interval": 0.01, "heartbeat_interval": 3600}},
    {"logger": {"flush_interval": 2, "forced_log_id": 1, "parent_log_dir": "runs/here"}},
    {"stop_signals": ["SIGUSR1"]},
    {"stop_signals": ["SIGUSR2", "SIGHUP"]},
    {"stop_signals": []},
    {"use_scheduler": True, "scheduler": {"name": "local", "time": "abc"}},  # the scheduler checks its options
])
def test_build_settings_accepts(data):
    build_settings(data)


# -- scheduler options: checked when the scheduler is built -------------------------------------------------
BAD_SCHEDULER_OPTIONS = [
    ({"workers": 0}, "mlx.scheduler.workers", "0"),
    ({"workers": -1}, "mlx.scheduler.workers", "-1"),
    ({"workers": "abc"}, "mlx.scheduler.workers", "'abc'"),
    ({"workers": True}, "mlx.scheduler.workers", "True"),
    ({"workers": 1.5}, "mlx.scheduler.workers", "1.5"),
    ({"gpus_per_job": 0}, "mlx.scheduler.gpus_per_job", "0"),
    ({"gpus_per_job": "2"}, "mlx.scheduler.gpus_per_job", "'2'"),
    ({"gpus": [0, 1], "gpus_per_job": 3}, "mlx.scheduler.gpus_per_job", "3"),
    ({"detach": "yes"}, "mlx.scheduler.detach", "'yes'"),
    ({"time": "abc"}, "mlx.scheduler.time", "'abc'"),
    ({"time": 0}, "mlx.scheduler.time", "0"),
    ({"time": -5}, "mlx.scheduler.time", "-5"),
    ({"time": "1:60"}, "mlx.scheduler.time", "'1:60'"),
    ({"time": "1-24"}, "mlx.scheduler.time", "'1-24'"),
    ({"time": "1:2:3:4"}, "mlx.scheduler.time", "'1:2:3:4'"),
    ({"time": True}, "mlx.scheduler.time", "True"),
    ({"time": 1.5}, "mlx.scheduler.time", "1.5"),
    ({"cpus_per_task": 0}, "mlx.scheduler.cpus_per_task", "0"),
    ({"cpus_per_task": "4"}, "mlx.scheduler.cpus_per_task", "'4'"),
    ({"mem": "lots"}, "mlx.scheduler.mem", "'lots'"),
    ({"mem": "16GB"}, "mlx.scheduler.mem", "'16GB'"),
    ({"mem": -1}, "mlx.scheduler.mem", "-1"),
    ({"mem": True}, "mlx.scheduler.mem", "True"),
    ({"signal_grace": -1}, "mlx.scheduler.signal_grace", "-1"),
    ({"signal_grace": "abc"}, "mlx.scheduler.signal_grace", "'abc'"),
    ({"signal_grace": True}, "mlx.scheduler.signal_grace", "True"),
    ({"array": "no"}, "mlx.scheduler.array", "'no'"),
]


@pytest.mark.parametrize(("options", "setting", "value"), BAD_SCHEDULER_OPTIONS,
                         ids=[f"{s}={v}" for _, s, v in BAD_SCHEDULER_OPTIONS])
def test_local_scheduler_refuses(options, setting, value):
    with pytest.raises(ConfigError) as info:
        LocalScheduler(**options)
    _assert_one_line(info.value, ConfigError, setting, value)


@pytest.mark.parametrize(("options", "setting", "value"), [({"gpus": 0}, "mlx.scheduler.gpus", "0"),
                                                           ({"gpus": "2"}, "mlx.scheduler.gpus", "'2'")])
def test_generic_options_refuse(options, setting, value):
    with pytest.raises(ConfigError) as info:
        GenericOptions(**options)
    _assert_one_line(info.value, ConfigError, setting, value)


@pytest.mark.parametrize("options", [
    {}, {"time": 90}, {"time": "90"}, {"time": "2:30"}, {"time": "02:00:00"}, {"time": "1-02"},
    {"time": "1-02:00"}, {"time": "1-02:00:00"}, {"mem": "16G"}, {"mem": "512M"}, {"mem": 1024}, {"mem": "1024"},
    {"mem": "2t"}, {"cpus_per_task": 4, "signal_grace": 0, "array": False}, {"workers": 4, "detach": True},
    {"gpus": [0, 1, 2, 3], "gpus_per_job": 2}, {"gpus": [0, 1], "gpus_per_job": 2},
])
def test_local_scheduler_accepts(options):
    LocalScheduler(**options)


def test_gpus_per_job_is_free_without_gpus():
    assert LocalScheduler(gpus_per_job=4).gpus == []  # CPU jobs: the GPU grouping does not apply


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 5400), ("2:30", 150), ("02:00:00", 7200), ("1-02", 93600), ("1-02:30", 95400), ("1-02:00:05", 93605),
    ("abc", None), ("", None), ("1-", None), ("-1", None), ("1:60", None), ("1-24", None), ("1:2:3:4", None),
    ("１２", None), (" 90", None),
])
def test_duration_seconds_follows_slurm_time_forms(text, seconds):
    assert duration_seconds(text) == seconds


# -- names that depend on the installed plugins ------------------------------------------------------------------
@pytest.fixture
def builtins_only(fresh_plugins):
    """Only the builtin plugins: the valid names do not depend on what else is installed."""
    fresh_plugins.set_plugin_manager(fresh_plugins.new_plugin_manager(load_entry_points=False))
    return fresh_plugins


@pytest.mark.parametrize(("data", "setting", "value"), [
    ({"logger": {"checkpoint_format": "nope"}}, "mlx.logger.checkpoint_format", "'nope'"),
    ({"logger": {"name": "filez"}}, "mlx.logger.name", "'filez'"),
    ({"use_scheduler": True, "scheduler": "slrum"}, "mlx.scheduler.name", "'slrum'"),
    ({"use_version_manager": True, "version_manager": "gti"}, "mlx.version_manager.name", "'gti'"),
])
def test_check_plugin_choices_refuses_unknown_names(builtins_only, data, setting, value):
    with pytest.raises(UnknownChoiceError) as info:
        check_plugin_choices(build_settings(data))
    message = _assert_one_line(info.value, UnknownChoiceError, setting, value)
    assert "valid: " in message


def test_check_plugin_choices_lists_the_registered_names(builtins_only):
    with pytest.raises(UnknownChoiceError) as info:
        check_plugin_choices(build_settings({"logger": {"checkpoint_format": "pickl"}}))
    assert "did you mean 'pickle'" in str(info.value) and "json" in str(info.value)


@pytest.mark.parametrize(("options", "setting", "value"), [
    ({"workers": 0}, "mlx.scheduler.workers", "0"),
    ({"time": "abc"}, "mlx.scheduler.time", "'abc'"),
])
def test_check_plugin_choices_builds_the_scheduler(builtins_only, options, setting, value):
    settings = build_settings({"use_scheduler": True, "scheduler": {"name": "local", **options}})
    with pytest.raises(ConfigError) as info:
        check_plugin_choices(settings)
    _assert_one_line(info.value, ConfigError, setting, value)


def test_check_plugin_choices_ignores_an_unused_scheduler(builtins_only):
    check_plugin_choices(build_settings({"scheduler": {"name": "slrum", "workers": 0}}))
    check_plugin_choices(build_settings({"use_scheduler": True, "scheduler": {"name": "local", "workers": 2,
                                                                               "time": "1-02:00:00", "mem": "16G"}}))
    check_plugin_choices(build_settings({"logger": {"checkpoint_format": "json"}}))


# -- end to end: a bad override stops the script before anything is written ---------------------------------
@pytest.mark.parametrize(("overrides", "setting", "value"), [
    (["+mlx.logger.flush_interval=1e308"], "mlx.logger.flush_interval", "1e+308"),
    (["+mlx.logger.heartbeat_interval=0"], "mlx.logger.heartbeat_interval", "0"),
    (["+mlx.logger.forced_log_id=0"], "mlx.logger.forced_log_id", "0"),
    (["+mlx.logger.forced_log_id=true"], "mlx.logger.forced_log_id", "True"),
    (["+mlx.stop_signals=[SIGKILL]"], "mlx.stop_signals", "'SIGKILL'"),
    (["+mlx.stop_signals=[SIGTERM]"], "mlx.stop_signals", "'SIGTERM'"),
    (["+mlx.logger.parent_log_dir="], "mlx.logger.parent_log_dir", "''"),
    (["+mlx.scheduler.workers=0", "+mlx.use_scheduler=true"], "mlx.scheduler.workers", "0"),
    (["+mlx.scheduler.workers=abc", "+mlx.use_scheduler=true"], "mlx.scheduler.workers", "'abc'"),
    (["+mlx.scheduler.gpus_per_job=0", "+mlx.use_scheduler=true"], "mlx.scheduler.gpus_per_job", "0"),
    (["+mlx.scheduler.time=abc", "+mlx.use_scheduler=true"], "mlx.scheduler.time", "'abc'"),
    (["+mlx.scheduler.mem=lots", "+mlx.use_scheduler=true"], "mlx.scheduler.mem", "'lots'"),
])
def test_a_bad_setting_is_one_line_and_writes_nothing(project, overrides, setting, value):
    result = project.run("x=1,2", *overrides)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxcore: error: "), result.stderr
    assert setting in lines[0] and value in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert project.run_ids() == [] and not project.logs.exists()
    assert sorted(p.name for p in project.root.iterdir()) == ["configs", "main.py"]  # not even in the cwd


def test_good_settings_still_run(project):
    result = project.run("+mlx.logger.flush_interval=0.5", "+mlx.logger.heartbeat_interval=1",
                         "+mlx.stop_signals=[SIGUSR1]")
    assert result.returncode == 0, result.stderr
    assert project.info(1)["status"] == "COMPLETE"


def test_good_scheduler_options_still_run(project):
    result = project.run("x=1,2", "+mlx.use_scheduler=true", "+mlx.scheduler.workers=2",
                         '+mlx.scheduler.time="1-02:00:00"', "+mlx.scheduler.mem=16G", "+mlx.scheduler.cpus_per_task=2")
    assert result.returncode == 0, result.stderr
    assert [project.info(i)["status"] for i in project.run_ids()] == ["COMPLETE", "COMPLETE"]
