"""@launch: config files, overrides in hydra's grammar, sweeps, seeding, failures, errors (real subprocesses)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml


def test_single_run_writes_a_complete_run_directory(project):
    result = project.run()
    assert result.returncode == 0, result.stderr
    assert project.run_ids() == [1]
    info = project.info(1)
    assert info["status"] == "COMPLETE"
    for key in ("log_id", "log_dir", "start_time", "end_time", "duration_s", "hostname", "pid", "user", "python",
                "argv", "overrides", "working_directory"):
        assert key in info, key
    assert info["start_time"][-6] in "+-"  # ISO-8601 with a UTC offset
    run = project.logs / "1"
    assert (run / "metadata" / "config.yaml").exists() and (run / "metadata" / "mlx.yaml").exists()
    assert (run / "metrics" / "end.json").read_text() == '{"done": 1}\n'


def test_missing_config_is_created_with_a_null_seed(project):
    (project.root / "configs" / "config.yaml").unlink()
    result = project.run("+mode=ok", "+x=1")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((project.root / "configs" / "config.yaml").read_text()) == {"seed": None}


def test_overrides_follow_hydra_grammar(project):
    result = project.run("opt.lr=0.5", "+opt.depth=6", "~opt.name", "++x=7", "seed=3")
    assert result.returncode == 0, result.stderr
    cfg = project.config(1)
    assert cfg["opt"] == {"lr": 0.5, "depth": 6} and cfg["x"] == 7 and cfg["seed"] == 3
    assert project.info(1)["overrides"] == ["opt.lr=0.5", "+opt.depth=6", "~opt.name", "++x=7", "seed=3"]


def test_a_sweep_needs_no_flag_and_expands_the_product(project):
    result = project.run("opt.lr=0.01,0.1", "seed=range(1,4)")
    assert result.returncode == 0, result.stderr
    assert project.run_ids() == [1, 2, 3, 4, 5, 6]
    points = {(project.config(i)["opt"]["lr"], project.config(i)["seed"]) for i in range(1, 7)}
    assert points == {(lr, s) for lr in (0.01, 0.1) for s in (1, 2, 3)}


def test_choice_sweep_and_seeding_function(project):
    result = project.run("seed=choice(5,7)")
    assert result.returncode == 0, result.stderr
    seen = [int((project.logs / str(i) / "metrics" / "setup.json").read_text().split('"seed_seen": ')[1].split(",")[0])
            for i in (1, 2)]
    assert seen == [5, 7]


def test_config_groups_are_composed_by_hydra(project):
    project.write_config({"defaults": [{"model": "small"}, "_self_"], "seed": 0, "x": 1})
    project.write_config({"depth": 2}, "model/small.yaml")
    project.write_config({"depth": 8}, "model/large.yaml")
    result = project.run("model=small,large", "x=1,2")
    assert result.returncode == 0, result.stderr
    assert sorted((project.config(i)["model"]["depth"], project.config(i)["x"]) for i in range(1, 5)) == [
        (2, 1), (2, 2), (8, 1), (8, 2)]


def test_one_failing_point_does_not_stop_the_others(project):
    result = project.run("mode=fail_if", "+fail_at=2", "x=1,2,3")
    assert result.returncode == 1
    assert [project.info(i)["status"] for i in (1, 2, 3)] == ["COMPLETE", "FAILED", "COMPLETE"]
    error = project.info(2)["error"]
    assert error["type"] == "ValueError" and "boom at x=2" in error["message"] and "Traceback" in error["traceback"]


def test_bad_override_is_one_line_and_creates_no_run(project):
    result = project.run("nosuchkey=3")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "nosuchkey" in result.stderr and "+nosuchkey=3" in result.stderr and "Traceback" not in result.stderr
    assert project.run_ids() == []


def test_malformed_override_is_one_line(project):
    result = project.run("x=[1,2")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = project.run("=3")
    assert result.returncode == 2 and "'=3'" in result.stderr and "no key" in result.stderr
    assert project.run_ids() == []


def test_unknown_framework_setting_lists_valid_keys(project):
    result = project.run("+mlx.logger.parent_dir=/tmp")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "mlx.logger.parent_dir" in line and "mlx.logger.parent_log_dir" in line and "\n" not in line


def test_unknown_key_in_mlx_yaml_is_an_error(project):
    (project.root / "configs" / "mlx.yaml").write_text("use_schedulr: true\n")
    result = project.run()
    assert result.returncode == 2 and "mlx.use_schedulr" in result.stderr and "mlx.use_scheduler" in result.stderr


def test_full_error_shows_the_traceback(project):
    result = project.run("nosuchkey=3", env={"MLXCORE_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_unknown_plugin_name_lists_choices(project):
    result = project.run("+mlx.logger.name=filez")
    assert result.returncode == 2 and "'filez'" in result.stderr and "files" in result.stderr


def test_framework_settings_apply_and_are_recorded(project, tmp_path):
    logs = tmp_path / "elsewhere"
    result = project.run(f"+mlx.logger.parent_log_dir={logs}", "mlx.logger.flush_interval=0.2")
    assert result.returncode == 0, result.stderr
    settings = yaml.safe_load((logs / "1" / "metadata" / "mlx.yaml").read_text())
    assert settings["logger"]["flush_interval"] == 0.2 and settings["logger"]["parent_log_dir"] == str(logs)


def test_sweeping_a_framework_setting_is_refused(project):
    result = project.run("+mlx.logger.flush_interval=1,2")
    assert result.returncode == 2 and "cannot be swept" in result.stderr


def test_decorating_imports_no_hydra(project):
    code = (f"import sys; sys.argv=['x']; sys.path.insert(0, {str(project.root)!r}); import main; "
            "print(sorted(m for m in ('hydra', 'omegaconf', 'pandas', 'duckdb', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_resume_into_a_forced_id_finds_the_checkpoint(project):
    first = project.run("mode=resume", "+epochs=5", "+stop_after=2")
    assert first.returncode == 1 and project.info(1)["status"] == "FAILED"
    second = project.run("mode=resume", "+epochs=5", "+mlx.logger.forced_log_id=1")
    assert second.returncode == 0, second.stderr
    assert project.run_ids() == [1]
    epochs = [line for line in (project.logs / "1" / "metrics" / "train.json").read_text().splitlines()]
    assert epochs == [f'{{"epoch": {e}}}' for e in range(5)]  # 0,1,2 then 3,4: nothing redone, nothing lost
    info = project.info(1)
    assert info["status"] == "COMPLETE" and info["attempt"] == 2 and info["history"][0]["status"] == "FAILED"


def test_interpolations_are_resolved_in_the_saved_config(project):
    project.write_config({"seed": 0, "x": 4, "y": "${x}"})
    assert project.run().returncode == 0
    assert project.config(1)["y"] == 4


@pytest.mark.parametrize("code, status, returncode", [(0, "COMPLETE", 0), (4, "FAILED", 4), ("bye", "FAILED", 1)])
def test_a_task_calling_sys_exit_records_its_status_and_ends_the_process(project, code, status, returncode):
    result = project.run("mode=exit", f"+code={code}", "x=1,2")
    assert result.returncode == returncode, result.stderr
    assert project.run_ids() == [1]  # the process ended, as the task asked: the second point is not run
    info = project.info(1)
    assert info["status"] == status and info.get("end_time")
    if status == "FAILED":
        assert info["error"]["message"] == f"the task called sys.exit({code!r})"
