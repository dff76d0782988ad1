"""mlxcore-slurm: the ``slurm`` scheduler. Only hook implementations here; the implementation loads lazily."""

from mlxcore import hookimpl


@hookimpl
def register_schedulers(register):
    from .scheduler import SlurmScheduler

    register(SlurmScheduler)
