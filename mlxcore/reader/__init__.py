"""Reading a logs directory back: filters, SQL and comparisons over thousands of runs.

Importing this package imports neither duckdb, pandas nor sqlglot; the ``duckdb`` reader does when used.
"""

from .base import Reader

__all__ = ["Reader"]
