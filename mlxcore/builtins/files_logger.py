"""Builtin plugin: the ``files`` run logger."""

from ..hookspecs import hookimpl


@hookimpl
def register_loggers(register):
    from ..loggers.files import FileLogger

    register(FileLogger)
