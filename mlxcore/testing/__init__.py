"""Test helpers for plugin authors (opt-in: importing this needs pytest)."""

from .scheduler_contract import SchedulerContract

__all__ = ["SchedulerContract"]
