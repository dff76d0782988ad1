"""Test helpers for plugin authors (opt-in: importing this needs pytest)."""

from .clusters import LocalCluster
from .scheduler_contract import SchedulerContract
from .waiting import WaitTimeout, wait_until

__all__ = ["LocalCluster", "SchedulerContract", "WaitTimeout", "wait_until"]
