"""Builtin plugin: artifact formats ``pickle``, ``dill``, ``json``, ``numpy``, and ``torch`` when it is installed."""

import importlib.util

from ..hookspecs import hookimpl


@hookimpl
def register_serializers(register):
    from .. import serializers

    for cls in (serializers.PickleSerializer, serializers.DillSerializer, serializers.JsonSerializer):
        register(cls())
    if importlib.util.find_spec("numpy") is not None:
        register(serializers.NumpySerializer())
    if importlib.util.find_spec("torch") is not None:  # looked up, not imported: import mlxcore stays light
        register(serializers.TorchSerializer())
