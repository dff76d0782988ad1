"""The submission's fast composition (:meth:`mlxcore.compose.Composer.resolved`) gives exactly what hydra's own
composition gives: the same data, the same key order, the same types, and an error where hydra has one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlxcore.compose import Composer
from mlxcore.errors import ConfigError
from mlxcore.overrides import parse_command_line

KEYS = st.sampled_from(["a", "b", "c", "lr", "seed", "opt", "name", "x_1", "dim-2"])
TEXT = st.text(alphabet="abcXYZ019 _-./:@", min_size=0, max_size=6)
SCALARS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.booleans(), st.none(), TEXT)
LEAVES = st.one_of(SCALARS, SCALARS, SCALARS, st.lists(SCALARS, max_size=3), st.just("${a}"), st.just("???"))
CONFIGS = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=10).map(
    lambda c: c if isinstance(c, dict) else {"a": c})


def hydra_text(value: Any) -> str:
    """``value`` as hydra's override grammar reads it back with its type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    return "'" + value + "'"


def paths(config: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in config.items():
        out.append(prefix + key)
        if isinstance(value, dict):
            out += paths(value, prefix + key + ".")
    return out


@st.composite
def cases(draw: Any) -> tuple[dict, list[str]]:
    config = draw(CONFIGS)
    known = paths(config)
    overrides = []
    for _ in range(draw(st.integers(1, 4))):
        if known and draw(st.integers(0, 3)):  # mostly keys the config has
            key = draw(st.sampled_from(known))
        else:
            key = ".".join(draw(st.lists(KEYS, min_size=1, max_size=3)))
        kind = draw(st.sampled_from(["", "", "", "+", "++"]))
        overrides.append(f"{kind}{key}={hydra_text(draw(SCALARS))}")
    return config, overrides


@st.composite
def fast_cases(draw: Any) -> tuple[dict, list[str]]:
    """Configs of scalars and lists, and overrides the fast path must take: a scalar set on a leaf that holds a
    scalar (``k=v``, ``++k=v``) or on a new key of an existing mapping (``+k=v``, ``++k=v``)."""
    config = draw(st.recursive(st.one_of(SCALARS, st.lists(SCALARS, max_size=3)),
                               lambda inner: st.dictionaries(KEYS, inner, min_size=1, max_size=4), max_leaves=10)
                  .map(lambda c: c if isinstance(c, dict) else {"a": c}))
    leaves = [p for p in paths(config) if not isinstance(lookup(config, p), (dict, list))]
    mappings = [""] + [p + "." for p in paths(config) if isinstance(lookup(config, p), dict)]
    taken = set(paths(config))
    overrides = []
    for _ in range(draw(st.integers(1, 4))):
        if leaves and draw(st.booleans()):
            text = draw(st.sampled_from(["", "++"])) + draw(st.sampled_from(leaves))
        else:
            parent = draw(st.sampled_from(mappings))
            key = parent + draw(KEYS.filter(lambda k, parent=parent: parent + k not in taken))
            text = draw(st.sampled_from(["+", "++"])) + key
            taken.add(key)
            leaves.append(key)  # from now on a key the config has
        overrides.append(f"{text}={hydra_text(draw(SCALARS))}")
    return config, overrides


def lookup(config: dict, path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        node = node[part]
    return node


def by_hydra(config_dir: Path, overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)


def exact(data: Any) -> str:
    """Data as text that tells key order, 1 from 1.0 from True, and NaN apart."""
    return json.dumps(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_fast_composition_equals_hydra(tmp_path_factory: pytest.TempPathFactory, case: tuple[dict, list[str]]) -> None:
    config, overrides = case
    config_dir = tmp_path_factory.mktemp("configs")
    (config_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        expected = exact(by_hydra(config_dir, overrides))
    except Exception:  # noqa: BLE001 - hydra refuses it: so must mlxcore
        expected = None
    plan = parse_command_line(overrides, config_dir)
    composer = Composer(config_dir)
    try:
        got = exact(composer.resolved(plan.fixed))
    except ConfigError:
        got = None
    event("fast path" if composer.fast_points else "OmegaConf path")
    if composer.fast_points:  # the fast path answers only what hydra answers, and answers it the same
        assert got == expected
        assert exact(composer.resolved(plan.fixed)) == expected  # the base's plain data was not changed
    elif expected is None:  # hydra refuses it: so does OmegaConf's path
        assert got is None
    elif got is not None:  # OmegaConf's path may refuse what hydra takes (a recursive interpolation overridden)
        assert got == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=fast_cases())
def test_the_fast_path_takes_plain_value_overrides(tmp_path_factory: pytest.TempPathFactory,
                                                   case: tuple[dict, list[str]]) -> None:
    config, overrides = case
    config_dir = tmp_path_factory.mktemp("configs")
    (config_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    composer = Composer(config_dir)
    got = exact(composer.resolved(parse_command_line(overrides, config_dir).fixed))
    assert composer.fast_points == 1
    assert got == exact(by_hydra(config_dir, overrides))


def test_a_value_sweep_takes_the_fast_path(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("seed: 0\nopt: {lr: 0.1, name: sgd}\ntags: [a, b]\n")
    plan = parse_command_line(["seed=range(0,50)", "opt.lr=0.01,0.1", "+opt.depth=3"], tmp_path)
    composer = Composer(tmp_path)
    got = [composer.resolved(point) for point in plan.points()]
    assert composer.fast_points == 100
    assert got[3] == {"seed": 1, "opt": {"lr": 0.1, "name": "sgd", "depth": 3}, "tags": ["a", "b"]}
    assert exact(got[3]) == exact(by_hydra(tmp_path, [o.text for o in list(plan.points())[3]]))


@pytest.mark.parametrize("config, overrides", [
    ("a: 1\nb: ${a}\n", ["a=2"]),  # an interpolation refers to what the point changes
    ("a: 1\nb: {c: 1}\n", ["b={c: 2}"]),  # a mapping value is merged
    ("a: 1\nb: [1, 2]\n", ["b=[3]"]),  # a list value
    ("a: 1\n", ["~a"]),  # a deletion
    ("a: 1\n", ["a='${oc.env:HOME}'"]),  # a value OmegaConf reads as an interpolation
])
def test_what_the_fast_path_leaves_to_omegaconf(tmp_path: Path, config: str, overrides: list[str]) -> None:
    (tmp_path / "config.yaml").write_text(config)
    plan = parse_command_line(overrides, tmp_path)
    composer = Composer(tmp_path)
    got = composer.resolved(plan.fixed)
    assert composer.fast_points == 0
    assert exact(got) == exact(by_hydra(tmp_path, overrides))
