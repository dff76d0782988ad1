"""Builtin plugin: the artifact formats a task adds while it runs, with ``ctx.logger.register_artifact_type``.

MLXP lets a task make a format out of two functions. mlxcore finds formats through the ``register_serializers``
hook only, so that every logger, reader and command sees the same ones and a name is owned once: such a format
is kept here, in this process's memory (its functions are never written to the logs: a log directory holds no
code), and this plugin registers it like any other. Adding one refills the serializers registry; a name that
another plugin already provides is refused, and adding the same name again replaces the functions (a sweep run
in one process registers its format once per run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..hookspecs import hookimpl
from ..registry import valid_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..serializers import Serializer

#: the formats added in this process, by name
_FORMATS: dict[str, Serializer] = {}


def add(name: str, save: Callable[[Any, str], None], load: Callable[[str], Any]) -> None:
    """Register the format ``name`` made of ``save(obj, path)`` and ``load(path)`` for this process.

    :raises ConfigError: the name is malformed, or a plugin already provides a format of that name.
    """
    from ..plugins import get_plugin_manager
    from ..serializers import FunctionSerializer

    if not isinstance(name, str) or not valid_name(name):
        raise ConfigError(f"artifact format {name!r} is not a valid name: use lower-case letters, digits, '_' and "
                          "'-', starting with a letter")
    if not callable(save) or not callable(load):
        raise ConfigError(f"artifact format {name!r}: save and load must be functions, save(obj, path) and load(path)")
    manager = get_plugin_manager()
    registry = manager.registry("serializers")
    if name in registry and name not in _FORMATS:
        raise ConfigError(f"artifact format {name!r} is already provided by {registry.provider(name).describe()}; "
                          "give the format registered with register_artifact_type another name")
    _FORMATS[name] = FunctionSerializer(name, save, load)
    manager.refill("serializers")


@hookimpl
def register_serializers(register: Callable[[Serializer], None]) -> None:
    for serializer in _FORMATS.values():
        register(serializer)
