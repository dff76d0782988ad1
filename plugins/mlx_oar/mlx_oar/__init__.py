"""mlxcore-oar: the ``oar`` scheduler. Only hook implementations here; the implementation loads lazily."""

from mlxcore import hookimpl


@hookimpl
def register_schedulers(register):
    from .scheduler import OarScheduler

    register(OarScheduler)
