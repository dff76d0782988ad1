"""Builtin plugin: the ``local`` scheduler (this machine as a queue)."""

from ..hookspecs import hookimpl


@hookimpl
def register_schedulers(register):
    from ..schedulers.local import LocalScheduler

    register(LocalScheduler)
