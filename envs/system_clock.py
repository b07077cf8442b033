"""The real wall clock."""

from __future__ import annotations

import time

__all__ = ["SystemClock"]


class SystemClock:
    """Wall-clock time from the operating system, for records and job timestamps."""

    def now(self) -> float:
        return time.time()
