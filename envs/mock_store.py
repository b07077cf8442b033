"""Recording doubles for tests: the shared call recorder, event sink, job store and wall clock.

Every mock service appends each call it receives to one :class:`CallRecorder`,
so a test can assert what was called, in what order, with which arguments,
across services.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, NamedTuple, final

import trio

__all__ = ["Call", "CallRecorder", "MemoryJobStore", "MockWallClock", "RecordingEventSink"]

DEFAULT_WALL_TIME = 1_700_000_000.0
"""Where a :class:`MockWallClock` starts: a fixed instant (2023-11-14), so records are stable."""


class Call(NamedTuple):
    """One call a mock service received: ``("worktrees", "commit_changes", (wt, "msg"))``.

    ``args`` holds every parameter of the protocol method in declaration
    order, keyword-only ones and defaults included, so a call compares equal
    to a plain tuple however the caller spelled it.
    """

    service: str
    method: str
    args: tuple[Any, ...]


@final
class CallRecorder:
    """An ordered log of every call made to the mock services that share it.

    A call is recorded when it starts, before it waits for anything, so the
    order is the order in which the callers asked.

    Example::

        recorder.of("worktrees", "merger") == [
            ("worktrees", "create_agent_worktree", ("agent-0000-x", "forkmerge/job-test")),
            ("merger", "merge", ("forkmerge-agents/job-test/agent-0000-x", ...)),
        ]
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def record(self, service: str, method: str, *args: Any) -> None:
        """Append one call."""
        self.calls.append(Call(service, method, args))

    def of(self, *services: str) -> list[Call]:
        """The calls to the named services (``"worktrees"``, ``"merger"``, ``"executor"``,
        ``"store"``, ``"events"``, ``"clock"``), in order."""
        return [call for call in self.calls if call.service in services]

    def methods(self, *services: str) -> list[str]:
        """``"service.method"`` of each call (to the named services, or all), in order."""
        return [
            f"{call.service}.{call.method}"
            for call in self.calls
            if not services or call.service in services
        ]

    def clear(self) -> None:
        """Forget every call recorded so far (e.g. after a test's own setup)."""
        self.calls.clear()


@final
class RecordingEventSink:
    """An :class:`~envs.protocols.EventSink` that keeps every event, in order.

    Events are deep-copied when emitted, so a caller mutating its dict later
    cannot rewrite history.
    """

    def __init__(self, recorder: CallRecorder | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self._recorder = recorder

    def emit(self, event: Mapping[str, Any]) -> None:
        kept = copy.deepcopy(dict(event))
        if self._recorder is not None:
            self._recorder.record("events", "emit", kept)
        self.events.append(kept)

    def where(self, **fields: Any) -> list[dict[str, Any]]:
        """The events whose fields include all of ``fields`` (``where(type="item_failed")``)."""
        return [
            event
            for event in self.events
            if all(key in event and event[key] == value for key, value in fields.items())
        ]


@final
class MemoryJobStore:
    """A :class:`~envs.protocols.JobStore` in a dict: job id -> its events in order.

    ``append`` and ``events`` are checkpoints (they may be cancelled before
    they act, like a real store); events are deep-copied on the way in and
    out, as a real store serializes them.
    """

    def __init__(self, recorder: CallRecorder | None = None) -> None:
        self.jobs: dict[str, list[Any]] = {}
        self._recorder = recorder

    async def append(self, job_id: str, event: Any) -> None:
        if self._recorder is not None:
            self._recorder.record("store", "append", job_id, event)
        await trio.lowlevel.checkpoint()
        self.jobs.setdefault(job_id, []).append(copy.deepcopy(event))

    async def events(self, job_id: str) -> list[Any]:
        if self._recorder is not None:
            self._recorder.record("store", "events", job_id)
        await trio.lowlevel.checkpoint()
        return copy.deepcopy(self.jobs.get(job_id, []))


@final
class MockWallClock:
    """A :class:`~envs.protocols.Clock` for tests: a fixed instant that moves with trio's clock.

    ``now()`` is ``start`` plus trio's current time (on a ``MockClock`` that is
    virtual time, starting at 0), so durations computed from wall times match
    the virtual ones. With ``follow_trio=False`` it stands still until
    :meth:`set` or :meth:`advance` moves it. Outside a trio run it reads as if
    trio's clock were at 0.
    """

    def __init__(
        self,
        start: float = DEFAULT_WALL_TIME,
        *,
        follow_trio: bool = True,
        recorder: CallRecorder | None = None,
    ) -> None:
        self._offset = start
        self.follow_trio = follow_trio
        self._recorder = recorder

    def now(self) -> float:
        if self._recorder is not None:
            self._recorder.record("clock", "now")
        return self._offset + self._trio_time()

    def set(self, value: float) -> None:
        """Make ``now()`` return ``value`` at this instant (then move on, if following trio)."""
        self._offset = value - self._trio_time()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (which must be non-negative)."""
        if seconds < 0:
            raise ValueError(f"`seconds` must be non-negative, got {seconds}")
        self._offset += seconds

    def _trio_time(self) -> float:
        if not self.follow_trio:
            return 0.0
        try:
            return trio.current_time()
        except RuntimeError:  # not inside trio.run
            return 0.0
