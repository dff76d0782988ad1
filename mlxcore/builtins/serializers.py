"""Builtin plugin: artifact formats ``pickle``, ``dill``, ``json``, ``numpy``, and ``torch`` when it is installed."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..serializers import Serializer


@hookimpl
def register_serializers(register: Callable[[Serializer], None]) -> None:
    from .. import serializers

    for cls in (serializers.PickleSerializer, serializers.DillSerializer, serializers.JsonSerializer):
        register(cls())
    if importlib.util.find_spec("numpy") is not None:
        register(serializers.NumpySerializer())
    if importlib.util.find_spec("torch") is not None:  # looked up, not imported: import mlxcore stays light
        register(serializers.TorchSerializer())
