"""The README's complete plugin example works as printed: loaded from an entry point, it runs a real job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from mlxcore.store import FINAL_STATUSES
from mlxcore.testing import wait_until

README = Path(__file__).parents[1] / "README.md"


def _blocks() -> dict[str, str]:
    """Code blocks of the README whose first line is a ``# path`` comment, by path."""
    blocks = {}
    for body in re.findall(r"```(?:python|toml)\n(.*?)```", README.read_text(), flags=re.S):
        first = body.splitlines()[0]
        if first.startswith("# ") and "/" in first or first.startswith("# pyproject"):
            blocks[first[2:].strip()] = body
    return blocks


def test_the_readme_plugin_example_runs_a_job(tmp_path, project):
    blocks = _blocks()
    site = tmp_path / "site"
    (site / "my_nice").mkdir(parents=True)
    (site / "my_nice" / "__init__.py").write_text(blocks["my_nice/__init__.py"])
    (site / "my_nice" / "scheduler.py").write_text(blocks["my_nice/scheduler.py"])
    dist = site / "mlxcore_nice-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mlxcore-nice\nVersion: 0.1.0\n")
    entry = re.search(r"\[project.entry-points.mlxcore\]\n(.*)\n", blocks["pyproject.toml"]).group(1)
    (dist / "entry_points.txt").write_text(f"[mlxcore]\n{entry.replace(chr(34), '')}\n")  # TOML string -> ini
    env = {**os.environ, "PYTHONPATH": str(site)}

    listing = subprocess.run([sys.executable, "-m", "mlxcore", "plugins", "--json"], env=env, capture_output=True,
                             text=True)
    (row,) = [r for r in json.loads(listing.stdout) if r["name"] == "nice"]
    assert row["registered"] == {"schedulers": ["nice"], "commands": ["hello"]} and row["error"] is None

    result = subprocess.run(project.command("+mlx.use_scheduler=true", "+mlx.scheduler.name=nice",
                                            "+mlx.scheduler.array=false", "x=1,2"),
                            cwd=project.root, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: all(project.info(i)["status"] in FINAL_STATUSES for i in (1, 2)), timeout=60,
               what="the two jobs of the README's scheduler to end")
    assert [project.info(i)["status"] for i in (1, 2)] == ["COMPLETE", "COMPLETE"]
    assert yaml.safe_load((project.logs / "1" / "metadata" / "scheduler.yaml").read_text())["name"] == "nice"
