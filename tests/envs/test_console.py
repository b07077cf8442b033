"""The progress display: counts, failures, and the warnings an operator must see."""

from __future__ import annotations

import io

from envs.console import ConsoleProgress


def test_plain_lines_for_items_failures_and_warnings() -> None:
    out = io.StringIO()
    progress = ConsoleProgress(out, live=False)
    progress.emit({"event": "map_planned", "total": 2, "max_parallel": 2})
    progress.emit({"event": "agent_started", "index": 0})
    progress.emit({"event": "agent_finished", "index": 0, "status": "merged"})
    progress.emit({"event": "agent_finished", "index": 1, "status": "failed", "error": "boom"})
    progress.emit({"event": "cleanup_failed", "error": "rm failed"})
    progress.emit({"event": "cleanup_failed", "item_key": "k1", "error": "busy"})
    progress.emit({"event": "disk_warning", "path": "/w", "percent": 91.5, "free_bytes": 10})
    text = out.getvalue()
    assert "map: 2 items, at most 2 at once" in text
    assert "item 0 merged" in text and "item 1 failed: boom" in text
    assert "cleanup of the job's worktrees failed: rm failed" in text
    assert "cleanup of item k1 failed: busy" in text
    assert "the disk holding /w is 91.5% full (10 bytes free)" in text


def test_a_live_display_rewrites_one_status_line() -> None:
    out = io.StringIO()
    progress = ConsoleProgress(out, live=True)
    progress.emit({"event": "map_planned", "total": 3, "max_parallel": 1})
    progress.emit({"event": "agent_started", "index": 0})
    assert "\r\x1b[K" in out.getvalue()
    assert "items 0/3 (done 0, failed 0, running 1)" in out.getvalue()
