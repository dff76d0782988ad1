"""``mlxcore sub`` and the job commands, the parts every scheduler shares: reading a batch script without running
it, expanding its sweeps, selecting runs, and the array task links. Real submissions are tested by the scheduler
plugins (plugins/mlx_slurm/tests/test_slurm_sub.py on a real SLURM)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlxcore.cli.jobs_command import parse_ids
from mlxcore.errors import ConfigError
from mlxcore.overrides import parse_command_line
from mlxcore.schedulers.base import JobSpec
from mlxcore.schedulers.submission import link_array_tasks
from mlxcore.subscript import hydra_quote, logical_lines, parse_script, plan_jobs

PREFIXES = {"slurm": "#SBATCH", "oar": "#OAR"}

SCRIPT = """\
#!/bin/bash
#SBATCH --time=60
#SBATCH   --gres=gpu:1
#SBATCHED is not a directive
module load cuda   # kept
source .venv/bin/activate
export X="a b"
srun python main.py lr=0.1,0.01 \\
    seed=1,2,3
# python commented.py x=1,2
python3.11 -m pkg.train model=a,b +mlx.logger.parent_log_dir=/elsewhere +mlx.use_scheduler=true
echo done
"""


def write(tmp_path: Path, text: str, name: str = "job.sh") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_batch_script_is_split_into_directives_sweeps_and_setup_lines(tmp_path):
    name, script = parse_script(write(tmp_path, SCRIPT), PREFIXES)
    assert name == "slurm"
    assert script.directives == ["--time=60", "--gres=gpu:1"]
    assert script.setup_lines == [
        "module load cuda   # kept", "source .venv/bin/activate", 'export X="a b"', "echo done"]
    first, second = script.sweeps
    assert (first.lineno, first.launcher, first.target, first.args) == (
        8, ["srun", "python"], ["main.py"], ["lr=0.1,0.01", "seed=1,2,3"])
    assert (second.launcher, second.target) == (["python3.11"], ["-m", "pkg.train"])


def test_the_script_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, f"#SBATCH --time=1\ntouch {marker}\npython main.py x=1,2\n")
    parse_script(path, PREFIXES)
    assert plan_jobs(parse_script(path, PREFIXES)[1], tmp_path / "logs")
    assert not marker.exists()


def test_sweeps_expand_to_the_product_of_each_line_and_the_sum_of_lines(tmp_path):
    _, script = parse_script(write(tmp_path, SCRIPT), PREFIXES)
    jobs = plan_jobs(script, None)
    assert len(jobs) == 2 * 3 + 2
    assert [j.overrides for j in jobs[:2]] == [["lr=0.1", "seed=1"], ["lr=0.1", "seed=2"]]
    assert jobs[0].logs == (Path.cwd() / "logs")  # no configs/mlx.yaml next to main.py
    assert jobs[-1].logs == Path("/elsewhere")  # the line's own parent_log_dir
    command = jobs[-1].command(7)
    assert command[:4] == ["python3.11", "-m", "pkg.train", "model=b"]
    assert command[-3:] == ["+mlx.logger.parent_log_dir=/elsewhere", "+mlx.logger.forced_log_id=7",
                            "+mlx.use_scheduler=false"]
    assert "+mlx.use_scheduler=true" not in command  # managed by mlxcore sub, never passed twice
    assert plan_jobs(script, tmp_path / "given logs")[-1].logs == tmp_path / "given logs"  # --logs wins


def test_the_logs_directory_comes_from_the_scripts_mlx_yaml(tmp_path, monkeypatch):
    (tmp_path / "proj" / "configs").mkdir(parents=True)
    (tmp_path / "proj" / "configs" / "mlx.yaml").write_text("logger:\n  parent_log_dir: /data/runs\n")
    monkeypatch.chdir(tmp_path)
    _, script = parse_script(write(tmp_path, "#SBATCH -t 1\npython proj/main.py x=1\n"), PREFIXES)
    assert plan_jobs(script, None)[0].logs == Path("/data/runs")


def test_continuation_lines_are_joined():
    assert logical_lines("a \\\nb\nc\\\\\nd") == [(1, "a  b"), (3, "c\\\\"), (4, "d")]


@pytest.mark.parametrize("text, message", [
    ("#SBATCH -t 1\necho no python\n", "no 'python SCRIPT.py ...'"),
    ("echo hi\npython main.py x=1\n", "no scheduler directive"),
    ("#SBATCH -t 1\n#OAR -l walltime=1\npython main.py x=1\n", "directives of oar, slurm"),
    ("#SBATCH -t 1\npython main.py x=1,2 'y=\n", "no 'python SCRIPT.py ...'"),  # unbalanced quote: not a sweep
])
def test_bad_scripts_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        parse_script(write(tmp_path, text), PREFIXES)


def test_a_bad_override_names_the_line(tmp_path):
    _, script = parse_script(write(tmp_path, "#SBATCH -t 1\necho\npython main.py x=1 y=[1,\n"), PREFIXES)
    with pytest.raises(ConfigError, match=r"job\.sh:3: "):
        plan_jobs(script, tmp_path)


def test_the_scheduler_can_be_forced(tmp_path):
    name, script = parse_script(write(tmp_path, "#OAR -l walltime=1\npython main.py x=1\n"), PREFIXES, "slurm")
    assert name == "slurm" and script.directives == []  # another scheduler's lines are comments


@pytest.mark.parametrize("value", ["/plain/path", "/tmp/logs dir with space's \"q\" %x", "a,b", "back\\slash",
                                   "end\\", "x=1", "", "é ü"])
def test_quoted_override_values_read_back_exactly(value):
    plan = parse_command_line([f"+mlx.logger.parent_log_dir={hydra_quote(value)}"], Path("/nonexistent"))
    assert plan.mlx_overrides[0].value == value


def test_log_id_selections():
    assert parse_ids(()) is None
    assert parse_ids(("12", "14-16", "20,21")) == {12, 14, 15, 16, 20, 21}
    for bad in ("x", "5-3", "1-"):
        with pytest.raises(ConfigError, match="bad log id"):
            parse_ids((bad,))


def test_array_tasks_link_to_their_run_directories(tmp_path):
    jobs = [JobSpec(i, tmp_path / "logs" / str(i), ["true"], tmp_path, f"j{i}") for i in (4, 5, 6)]
    tasks = tmp_path / "tasks"
    link_array_tasks(tasks, jobs, 1)
    assert {p.name: p.resolve() for p in tasks.iterdir()} == {"1": jobs[0].run_dir, "2": jobs[1].run_dir,
                                                                "3": jobs[2].run_dir}
    link_array_tasks(tasks, jobs[::-1], 1)  # a resubmission replaces the links
    assert (tasks / "1").resolve() == jobs[2].run_dir


def test_sub_dry_run_and_cancel_without_selection_from_the_command_line(tmp_path):
    path = write(tmp_path, "#!/bin/bash\nexport A=1\npython main.py x=1,2\n")
    dry = subprocess.run([sys.executable, "-m", "mlxcore", "sub", str(path), "--scheduler", "local", "--dry-run"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "would submit 2 job(s) to local" in dry.stdout and "setup:     export A=1" in dry.stdout
    assert not (tmp_path / "logs").exists()
    (tmp_path / "logs").mkdir()
    cancel = subprocess.run([sys.executable, "-m", "mlxcore", "cancel", str(tmp_path / "logs")],
                            capture_output=True, text=True, timeout=60)
    assert cancel.returncode == 2 and "say which runs to cancel" in cancel.stderr
