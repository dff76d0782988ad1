"""What the command line of a launch says: ``--help`` shows the task's config keys and the ``mlx.*`` settings in
effect (it used to fail inside hydra's override lexer), a stray option is one clear line, and a run in this
process names its id and directory when it starts and its status when it ends (it used to print nothing)."""

from __future__ import annotations


def test_help_lists_the_config_keys_and_the_settings_in_effect_and_writes_nothing(project):
    (project.root / "configs" / "mlx.yaml").write_text("logger:\n  parent_log_dir: ./my_logs\n")
    result = project.run("--help", "+mlx.skip_completed=true")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("usage: main.py [KEY=VALUE ...] [+mlx.SETTING=VALUE ...]")
    for line in ("  seed=0", "  x=1", "  mode=ok", "  opt.lr=0.1", "  opt.name=sgd"):
        assert f"\n{line}\n" in out, out
    # mlx.yaml and the overrides given beside --help are what the settings show
    for line in ("  mlx.logger.parent_log_dir=./my_logs", "  mlx.skip_completed=true", "  mlx.use_scheduler=false",
                 "  mlx.scheduler.name=local", "  mlx.stop_signals=[SIGUSR1, SIGUSR2]"):
        assert f"\n{line}\n" in out, out
    assert "Lexer" not in result.stderr and not (project.root / "my_logs").exists() and not project.logs.exists()
    assert project.run("-h").stdout == project.run("--help").stdout


def test_help_says_when_the_config_cannot_be_read(project):
    (project.root / "configs" / "config.yaml").write_text("seed: [unclosed\n")
    result = project.run("--help")
    assert result.returncode == 0 and "config keys (" in result.stdout
    assert "(cannot be read:" in result.stdout and "mlx.use_logger=true" in result.stdout, result.stdout


def test_an_option_the_launch_does_not_take_is_one_line_naming_it(project):
    result = project.run("x=2", "--verbose")
    assert result.returncode == 2 and not project.logs.exists()
    expected = ("mlxcore: error: '--verbose' is not an option of a launch: the command line takes KEY=VALUE "
                "overrides and +mlx.SETTING=VALUE settings (see --help)")
    assert result.stderr.strip().splitlines() == [expected], result.stderr


def test_a_run_says_its_id_and_directory_then_how_it_ended(project):
    result = project.run("x=1,2", "mode=fail_if", "+fail_at=2")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("mlxcore: run ")]
    assert lines[0] == f"mlxcore: run 1: {project.logs / '1'}", result.stderr
    assert "mlxcore: run 1 COMPLETE" in lines and "mlxcore: run 2 FAILED" in lines, result.stderr
    assert f"mlxcore: run 2: {project.logs / '2'}" in lines


def test_a_submitted_job_gets_each_setting_once_and_a_first_sweep_skips_nothing_silently(project):
    result = project.run("x=1,2", "+mlx.use_scheduler=True", "+mlx.skip_completed=true", "+mlx.scheduler.workers=2")
    assert result.returncode == 0, result.stderr
    assert "skipped 0" not in result.stderr, result.stderr
    for log_id in project.run_ids():
        argv = project.info(log_id)["argv"]
        for key in ("use_scheduler", "skip_completed", "rerun_failed", "logger.forced_log_id"):
            given = [a for a in argv if a.startswith(f"+mlx.{key}=")]
            assert len(given) == 1, (key, argv)  # what the submitter decided, never a pair that contradicts it
        assert "+mlx.use_scheduler=false" in argv and "+mlx.scheduler.workers=2" in argv
    again = project.run("x=1,2", "+mlx.use_scheduler=True", "+mlx.skip_completed=true", "+mlx.scheduler.workers=2")
    assert "skipped 2 sweep point(s) already COMPLETE" in again.stderr, again.stderr
