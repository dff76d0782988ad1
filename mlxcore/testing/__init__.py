"""Test helpers for plugin authors (opt-in: importing this needs pytest): a contract suite per plugin kind, a
local cluster for scheduler tests, and ``wait_until``."""

from .clusters import LocalCluster
from .logger_contract import LoggerContract
from .reader_contract import ReaderContract
from .scheduler_contract import SchedulerContract
from .serializer_contract import SerializerContract
from .sweeper_contract import SweeperContract
from .version_manager_contract import VersionManagerContract
from .waiting import WaitTimeout, wait_until

__all__ = ["LocalCluster", "LoggerContract", "ReaderContract", "SchedulerContract", "SerializerContract",
           "SweeperContract", "VersionManagerContract", "WaitTimeout", "wait_until"]
