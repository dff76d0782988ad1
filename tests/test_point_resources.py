"""Per-point resources: scheduler options that interpolate each point's config, and one submission per
distinct set of options (hydra's launchers give every point the same resources)."""

from __future__ import annotations

import pytest
import yaml

from mlxcore.errors import ConfigError
from mlxcore.schedulers.resources import PointResources, without_templates


def test_references_take_the_points_values_whole_typed_or_inside_text():
    resources = PointResources({"time": "${model.hours}:00:00", "cpus_per_task": "${model.cpus}",
                                "options": ["--constraint=${model.gpu}", "--qos=normal"], "array": True})
    config = {"model": {"hours": 2, "cpus": 4, "gpu": "a100"}}
    assert resources.for_point(config) == {"time": "2:00:00", "cpus_per_task": 4, "array": True,
                                           "options": ["--constraint=a100", "--qos=normal"]}
    assert without_templates(resources.options) == {"array": True}
    assert not PointResources({"time": 5}) and PointResources({"time": 5}).for_point(config) == {"time": 5}


def test_options_are_resolved_once_per_distinct_set_of_values():
    resources = PointResources({"mem": "${model.mem}"})
    first = resources.for_point({"model": {"mem": "4G"}, "seed": 1})
    assert resources.for_point({"model": {"mem": "4G"}, "seed": 2}) is first
    assert resources.for_point({"model": {"mem": "8G"}, "seed": 1}) == {"mem": "8G"}


@pytest.mark.parametrize(("options", "config", "message"), [
    ({"mem": "${model.mem}"}, {"model": {}}, r"interpolates \$\{model.mem\}, which the config of point p lacks"),
    ({"mem": "${model}"}, {"model": {"a": 1}}, "which is a dict, not a value"),
    ({"mem": "${oc.env:HOME}"}, {}, "interpolate the config's keys only"),
])
def test_bad_references_are_one_line_errors(options, config, message):
    with pytest.raises(ConfigError, match=message):
        PointResources(options).for_point(config, "p")


def test_a_sweep_is_submitted_once_per_distinct_set_of_resources(project):
    """Four points, two sizes: two submissions (arrays), each run recording the options it was given."""
    project.write_config({"seed": 0, "x": 1, "mode": "ok", "model": {"minutes": 10}})
    (project.root / "configs" / "mlx.yaml").write_text(yaml.safe_dump(
        {"scheduler": {"name": "local", "time": "${model.minutes}", "workers": 2}}))
    result = project.run("model.minutes=10,20", "seed=1,2", "+mlx.use_scheduler=true")
    assert result.returncode == 0, result.stderr
    records = {i: yaml.safe_load((project.logs / str(i) / "metadata" / "scheduler.yaml").read_text())
               for i in project.run_ids()}
    by_minutes = {i: project.config(i)["model"]["minutes"] for i in records}
    assert all(records[i]["resources"] == {"time": by_minutes[i]} for i in records), records
    scripts = {records[i]["script"] for i in records}
    assert len(scripts) == 2  # one array per size
    assert all(project.info(i)["status"] == "COMPLETE" for i in records)


def test_a_bad_per_point_value_names_the_point_and_submits_nothing(project):
    project.write_config({"seed": 0, "x": 1, "mode": "ok", "model": {"minutes": 10}})
    (project.root / "configs" / "mlx.yaml").write_text(yaml.safe_dump(
        {"scheduler": {"name": "local", "time": "${model.minutes}"}}))
    result = project.run("model.minutes=10,-3", "+mlx.use_scheduler=true")
    assert result.returncode == 2 and "mlx.scheduler.time" in result.stderr and "model.minutes=-3" in result.stderr
    assert project.run_ids() == []
