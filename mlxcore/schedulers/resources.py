"""Per-point resources: scheduler options that take their value from each sweep point's config.

A sweep over model sizes needs more memory and time for the big ones. In ``mlx.yaml`` (or an override) a
scheduler option may reference the task's config, ``mem: "${model.mem}"`` or ``time: "${model.hours}:00:00"``:
each point's option is then its own config's value, and the points are submitted as one array per distinct set
of options (hydra's launchers give every point the same resources).

Only references to config keys are interpolated (``${a.b}``, whole or inside a string); an option that is
exactly one reference takes the value with its type (``cpus_per_task: ${model.cpus}`` stays an int). Values
are resolved once per distinct set of referenced values, so a sweep of 10,000 points over 3 sizes costs 3
resolutions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ConfigError

_REFERENCE = re.compile(r"\$\{([^{}]*)\}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")


def is_templated(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, (list, tuple)):
        return any(is_templated(v) for v in value)
    return False


def without_templates(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the per-point ones (what can be checked before any point is composed)."""
    return {k: v for k, v in options.items() if not is_templated(v)}


class PointResources:
    """The scheduler options of each point, from the options as written and the point's resolved config."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = dict(options)
        self.templated = {k: v for k, v in self.options.items() if is_templated(v)}
        for key, value in self.templated.items():
            for text in (value if isinstance(value, (list, tuple)) else [value]):
                for reference in _REFERENCE.findall(str(text)):
                    if not _KEY.fullmatch(reference.strip()):
                        raise ConfigError(
                            f"mlx.scheduler.{key}: {text!r} holds ${{{reference}}}; per-point options interpolate "
                            "the config's keys only, e.g. ${model.mem}")
        self._resolved: dict[str, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.templated)

    def for_point(self, config: dict[str, Any], point: str = "") -> dict[str, Any]:
        """The options for a point whose resolved config is ``config`` (``point`` names it in errors).

        :raises ConfigError: a referenced key is missing from the config, or is not a plain value.
        """
        if not self.templated:
            return self.options
        used = {ref.strip(): _lookup(config, ref.strip(), point) for value in self.templated.values()
                for text in (value if isinstance(value, (list, tuple)) else [value])
                for ref in _REFERENCE.findall(str(text))}
        key = json.dumps(used, sort_keys=True, default=str)
        if key not in self._resolved:
            resolved = dict(self.options)
            for name, value in self.templated.items():
                if isinstance(value, (list, tuple)):
                    resolved[name] = [_substitute(str(v), used) if is_templated(v) else v for v in value]
                else:
                    resolved[name] = _substitute(value, used)
            self._resolved[key] = resolved
        return self._resolved[key]


def group_key(options: dict[str, Any]) -> str:
    """A key equal for equal option sets: the points submitted together."""
    return json.dumps(options, sort_keys=True, default=str)


def _lookup(config: dict[str, Any], dotted: str, point: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            where = f" of point {point}" if point else ""
            raise ConfigError(f"mlx.scheduler interpolates ${{{dotted}}}, which the config{where} lacks")
        node = node[part]
    if isinstance(node, (dict, list)):
        raise ConfigError(f"mlx.scheduler interpolates ${{{dotted}}}, which is a {type(node).__name__}, not a value")
    return node


def _substitute(text: str, values: dict[str, Any]) -> Any:
    whole = _REFERENCE.fullmatch(text)
    if whole:  # exactly one reference: the value keeps its type
        return values[whole.group(1).strip()]
    return _REFERENCE.sub(lambda m: str(values[m.group(1).strip()]), text)
