"""Test helpers for plugin authors (opt-in: importing this needs pytest)."""

from .clusters import LocalCluster
from .scheduler_contract import SchedulerContract

__all__ = ["LocalCluster", "SchedulerContract"]
