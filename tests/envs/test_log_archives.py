"""LogArchives: set aside, compress, shift, keep at most N, report failures, recover."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from envs.log_archives import LogArchives


def archive_text(archives: LogArchives, log_file: Path, text: str) -> None:
    log_file.write_text(text)
    archives.archive(str(log_file))
    archives.wait()


def test_archives_are_numbered_newest_first_and_cut_at_keep(tmp_path: Path) -> None:
    archives = LogArchives(str(tmp_path), "events", 2)
    log_file = tmp_path / "events.jsonl"
    for text in ("first\n", "second\n", "third\n"):
        archive_text(archives, log_file, text)
    assert sorted(os.listdir(tmp_path)) == ["events.1.jsonl.gz", "events.2.jsonl.gz"]
    assert gzip.decompress(Path(archives.path(1)).read_bytes()) == b"third\n"
    assert gzip.decompress(Path(archives.path(2)).read_bytes()) == b"second\n"
    assert archives.take_error() is None


def test_keep_zero_deletes_the_file(tmp_path: Path) -> None:
    archives = LogArchives(str(tmp_path), "events", 0)
    archive_text(archives, tmp_path / "events.jsonl", "gone\n")
    assert os.listdir(tmp_path) == []


def test_a_failure_is_reported_once_and_the_set_aside_file_kept(tmp_path: Path) -> None:
    archives = LogArchives(str(tmp_path), "events", 3)
    Path(archives.path(1) + ".tmp").mkdir()
    archive_text(archives, tmp_path / "events.jsonl", "kept\n")
    error = archives.take_error()
    assert error is not None and error.startswith("IsADirectoryError")
    assert archives.take_error() is None
    assert (tmp_path / "events.jsonl.rotating").read_text() == "kept\n"


def test_what_a_killed_process_left_is_archived_on_opening(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl.rotating").write_text("left\n")
    (tmp_path / "events.1.jsonl.gz.tmp").write_bytes(b"half")
    archives = LogArchives(str(tmp_path), "events", 3)
    archives.wait()
    assert os.listdir(tmp_path) == ["events.1.jsonl.gz"]
    assert gzip.decompress(Path(archives.path(1)).read_bytes()) == b"left\n"
