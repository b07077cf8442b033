"""EventLog: JSON lines, excerpts with hashes, counted repeats, rotation, bounds; FanoutSink."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from envs.event_log import EventLog, FanoutSink
from pure.error_summary import excerpt


class StepClock:
    """A wall clock that advances one second each time it is read."""

    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        self.time += 1.0
        return self.time


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().decode().split("\n") if line]


def read_archive(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rb") as file:
        return [json.loads(line) for line in file.read().decode().split("\n") if line]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_log(tmp_path: Path, **options: Any) -> EventLog:
    return EventLog(str(tmp_path), clock=StepClock(), **options)


# ---- lines, excerpts -------------------------------------------------------------------------


def test_each_event_is_one_json_line_with_the_log_time(tmp_path: Path) -> None:
    with make_log(tmp_path) as log:
        log.emit({"event": "job_started", "job_id": "j1", "workflow": "w"})
        log.emit({"event": "phase_started", "phase": "map", "ts": 5})
    assert log.path == str(tmp_path / "events.jsonl")
    assert read_lines(tmp_path / "events.jsonl") == [
        {"ts": 1001.0, "event": "job_started", "job_id": "j1", "workflow": "w"},
        {"ts": 1002.0, "event": "phase_started", "phase": "map"},
    ]


def test_every_event_is_on_disk_as_soon_as_it_is_emitted(tmp_path: Path) -> None:
    log = make_log(tmp_path, name="debug")
    log.emit({"event": "agent_started", "index": 3})
    assert read_lines(tmp_path / "debug.jsonl") == [
        {"ts": 1001.0, "event": "agent_started", "index": 3}
    ]
    log.close()


def test_long_strings_become_excerpts_with_the_hash_of_the_whole(tmp_path: Path) -> None:
    output = "".join(f"line {number}\n" for number in range(1000))
    command = "pytest " + "-k x " * 200
    with make_log(tmp_path, excerpt_chars=100) as log:
        log.emit(
            {
                "event": "step_finished",
                "command": command,
                "status": "failed",
                "details": {"stderr": [output, "short"], "k" * 150: 1},
            }
        )
    [line] = read_lines(tmp_path / "events.jsonl")

    def data(text: str) -> dict[str, Any]:
        cut = excerpt(text, 100)
        return {"excerpt": cut.head_and_tail, "length": len(text), "sha256": sha(text)}

    assert line["command"] == data(command)
    assert line["status"] == "failed"
    assert line["details"]["stderr"] == [data(output), "short"]
    [long_key] = [key for key in line["details"] if key.startswith("k")]
    assert long_key == excerpt("k" * 150, 100).head_and_tail
    assert line["command"]["excerpt"].startswith("pytest -k x")
    assert "characters omitted" in line["command"]["excerpt"]


def test_values_that_are_not_json_are_stored_as_strings(tmp_path: Path) -> None:
    nested: Any = "bottom"
    for _ in range(40):
        nested = [nested]
    with make_log(tmp_path) as log:
        log.emit(
            {
                "event": "odd",
                "nan": float("nan"),
                "big": 2**70,
                "small": -(2**62),
                "path": Path("/tmp/x"),
                "pair": (1, 2.5, None, True),
                "set": {"only"},
                "deep": nested,
            }
        )
    [line] = read_lines(tmp_path / "events.jsonl")
    assert line["nan"] == "nan"
    assert line["big"] == str(2**70)
    assert line["small"] == -(2**62)
    assert line["path"] == "/tmp/x"
    assert line["pair"] == [1, 2.5, None, True]
    assert line["set"] == ["only"]
    depth = 0
    value = line["deep"]
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert depth == 32  # the 33rd level is written as its text
    assert value.startswith("[[") and "bottom" in value


def test_line_separators_and_lone_surrogates_stay_inside_their_line(tmp_path: Path) -> None:
    text = "a\u2028b\x85c\u2029d\ne\udc80"
    with make_log(tmp_path) as log:
        log.emit({"event": "x", "error": text})
        log.emit({"event": "y"})
    raw = (tmp_path / "events.jsonl").read_bytes().decode()
    assert len(raw.splitlines()) == 2
    assert json.loads(raw.splitlines()[0])["error"] == text


def test_an_event_too_big_for_one_line_is_replaced_by_an_excerpt_of_it(tmp_path: Path) -> None:
    event = {
        "event": "huge",
        "error": "e",
        **{f"field{number}": "v" * 400 for number in range(300)},
    }
    with make_log(tmp_path) as log:
        log.emit(event)
        log.emit(event)
    first, second, repeated = read_lines(tmp_path / "events.jsonl")
    whole = json.dumps(
        {"ts": 1001.0, **event, "error_hash": first["error_hash"]},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert first["event"] == "huge"
    assert first["oversized"]["length"] == len(whole)
    assert first["oversized"]["sha256"] == sha(whole)
    assert first["oversized"]["excerpt"].startswith('{"ts":1001.0,"event":"huge","error":"e"')
    assert second["repeat_of"] == first["error_hash"]
    assert second["repeat"] == 1
    assert repeated["count"] == 1
    assert all(len(json.dumps(line)) < 2000 for line in (first, second))


def test_a_partial_last_line_left_by_a_crash_is_ended_before_appending(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_bytes(b'{"ts":1,"event":"a"}\n{"ts":2,"eve')
    with make_log(tmp_path) as log:
        log.emit({"event": "b"})
    lines = (tmp_path / "events.jsonl").read_bytes().split(b"\n")
    assert lines == [b'{"ts":1,"event":"a"}', b'{"ts":2,"eve', b'{"ts":1001.0,"event":"b"}', b""]


# ---- repeated errors -------------------------------------------------------------------------


def test_a_repeated_error_is_stored_once_and_counted(tmp_path: Path) -> None:
    error = "step 2 failed: " + "x" * 2000
    with make_log(tmp_path) as log:
        for index in range(5):
            log.emit(
                {"event": "agent_finished", "index": index, "status": "failed", "error": error}
            )
    first, *repeats, summary = read_lines(tmp_path / "events.jsonl")
    digest = first["error_hash"]
    assert first["error"]["sha256"] == sha(error)
    assert first["index"] == 0
    assert [line["index"] for line in repeats] == [1, 2, 3, 4]
    assert [line["repeat"] for line in repeats] == [1, 2, 3, 4]
    assert all(line["repeat_of"] == digest and "error" not in line for line in repeats)
    assert all(line["status"] == "failed" for line in repeats)
    assert summary == {
        "ts": 1006.0,
        "event": "repeated",
        "of": "agent_finished",
        "hash": digest,
        "count": 4,
        "first_ts": 1001.0,
        "last_ts": 1005.0,
    }


def test_repeats_are_per_kind_and_per_error(tmp_path: Path) -> None:
    with make_log(tmp_path) as log:
        log.emit({"event": "agent_finished", "error": "boom"})
        log.emit({"event": "cleanup_failed", "error": "boom"})
        log.emit({"event": "agent_finished", "error": "bang"})
        log.emit({"event": "agent_finished", "error": "boom", "output": "more"})
        log.emit({"event": "agent_finished", "error": None, "output": ""})
        log.emit({"event": "agent_finished", "error": None, "output": ""})
    lines = read_lines(tmp_path / "events.jsonl")
    assert len(lines) == 6
    assert all("repeat_of" not in line for line in lines)
    # The same error under another kind of event is tracked apart, under the same hash.
    assert lines[0]["error_hash"] == lines[1]["error_hash"]
    assert len({line["error_hash"] for line in lines[1:4]}) == 3
    assert "error_hash" not in lines[4]


def test_structured_errors_are_compared_by_value(tmp_path: Path) -> None:
    with make_log(tmp_path) as log:
        log.emit({"event": "f", "error": {"kind": "step", "paths": ["a", "b"]}})
        log.emit({"event": "f", "error": {"paths": ["a", "b"], "kind": "step"}})
    first, second, summary = read_lines(tmp_path / "events.jsonl")
    assert second["repeat_of"] == first["error_hash"]
    assert summary["count"] == 1


def test_odd_event_kinds_are_named_within_bounds_in_repeat_counts(tmp_path: Path) -> None:
    with make_log(tmp_path) as log:
        for kind in ("k" * 700, 7, "k" * 700, 7):
            log.emit({"event": kind, "error": "same"})
    lines = read_lines(tmp_path / "events.jsonl")
    assert lines[0]["event"]["length"] == 700 and "error" in lines[0]
    assert lines[2]["repeat_of"] == lines[0]["error_hash"]
    assert lines[3]["repeat_of"] == lines[1]["error_hash"] == lines[0]["error_hash"]
    long_kind, number_kind = (line for line in lines if line["event"] == "repeated")
    assert long_kind["of"].startswith('{"excerpt": "kkkk') and len(long_kind["of"]) < 150
    assert number_kind["of"] == 7


def test_the_least_recent_error_is_counted_out_when_too_many_are_tracked(tmp_path: Path) -> None:
    # This small a log tracks one error at a time.
    with make_log(tmp_path, max_bytes=9000, excerpt_chars=100) as log:
        log.emit({"event": "f", "error": "A"})
        log.emit({"event": "f", "error": "A"})
        log.emit({"event": "f", "error": "B"})
        log.emit({"event": "f", "error": "A"})
    lines = read_lines(tmp_path / "events.jsonl")
    assert [line["event"] for line in lines] == ["f", "f", "f", "repeated", "f"]
    assert lines[3]["count"] == 1 and lines[3]["hash"] == lines[0]["error_hash"]
    assert lines[4]["error"] == "A"  # stored again: its first occurrence was counted out


# ---- rotation --------------------------------------------------------------------------------


def emit_numbered(log: EventLog, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        log.emit({"event": "step_finished", "n": number, "command": f"cmd-{number}-" + "c" * 200})


def all_numbers(tmp_path: Path, keep: int) -> list[int]:
    lines: list[dict[str, Any]] = []
    for number in range(keep, 0, -1):
        archive = tmp_path / f"events.{number}.jsonl.gz"
        if archive.exists():
            lines += read_archive(archive)
    lines += read_lines(tmp_path / "events.jsonl")
    return [line["n"] for line in lines if "n" in line]


def test_full_files_are_compressed_and_shifted_keeping_at_most_keep(tmp_path: Path) -> None:
    with make_log(tmp_path, max_bytes=9000, excerpt_chars=100, keep=2) as log:
        emit_numbered(log, 200)
    names = sorted(os.listdir(tmp_path))
    assert names == ["events.1.jsonl.gz", "events.2.jsonl.gz", "events.jsonl"]
    numbers = all_numbers(tmp_path, 2)
    # The newest events, in order and without a gap, across the archives and the current file.
    assert numbers == list(range(200 - len(numbers), 200))
    assert len(numbers) > 20
    for name in names:
        path = tmp_path / name
        data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        assert len(data) <= 9000


def test_keep_zero_deletes_full_files(tmp_path: Path) -> None:
    with make_log(tmp_path, max_bytes=9000, excerpt_chars=100, keep=0) as log:
        emit_numbered(log, 100)
    assert os.listdir(tmp_path) == ["events.jsonl"]
    assert all_numbers(tmp_path, 0)[-1] == 99


def test_archives_past_keep_left_by_an_earlier_run_are_deleted(tmp_path: Path) -> None:
    for number in (1, 2, 7):
        (tmp_path / f"events.{number}.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    (tmp_path / "other.9.jsonl.gz").write_bytes(b"not ours")
    with make_log(tmp_path, max_bytes=9000, excerpt_chars=100, keep=2) as log:
        emit_numbered(log, 25)
    assert sorted(os.listdir(tmp_path)) == [
        "events.1.jsonl.gz",
        "events.2.jsonl.gz",
        "events.jsonl",
        "other.9.jsonl.gz",
    ]
    assert read_archive(tmp_path / "events.2.jsonl.gz") == [{}]


def test_a_log_reopened_on_a_full_file_rotates_it_first(tmp_path: Path) -> None:
    with make_log(tmp_path, excerpt_chars=100) as log:
        emit_numbered(log, 50)
    size = (tmp_path / "events.jsonl").stat().st_size
    assert size > 9000
    with make_log(tmp_path, max_bytes=size + 10, excerpt_chars=100) as log:
        emit_numbered(log, 1, start=50)
    assert [line["n"] for line in read_lines(tmp_path / "events.jsonl")] == [50]
    assert read_archive(tmp_path / "events.1.jsonl.gz")[-1]["n"] == 49


def test_repeat_counts_close_the_file_they_belong_to(tmp_path: Path) -> None:
    with make_log(tmp_path, max_bytes=9000, excerpt_chars=100) as log:
        for index in range(60):
            log.emit({"event": "agent_finished", "index": index, "error": "same " + "e" * 150})
    archived = read_archive(tmp_path / "events.1.jsonl.gz")
    current = read_lines(tmp_path / "events.jsonl")
    assert archived[0]["error"]["length"] == 155
    assert archived[-1]["event"] == "repeated"
    assert archived[-1]["count"] == len(archived) - 2
    # The new file stores the error again in full before counting its repeats.
    assert current[0]["error"] == archived[0]["error"]
    assert current[-1]["count"] == len(current) - 2


def test_a_rotation_a_crash_interrupted_is_finished_on_start(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl.rotating").write_bytes(b'{"n":1}\n')
    (tmp_path / "events.1.jsonl.gz.tmp").write_bytes(b"half a gzip")
    (tmp_path / "events.1.jsonl.gz").write_bytes(gzip.compress(b'{"n":0}\n'))
    make_log(tmp_path).close()
    assert sorted(os.listdir(tmp_path)) == ["events.1.jsonl.gz", "events.2.jsonl.gz"]
    assert read_archive(tmp_path / "events.1.jsonl.gz") == [{"n": 1}]
    assert read_archive(tmp_path / "events.2.jsonl.gz") == [{"n": 0}]


def test_a_failed_compression_is_reported_in_the_log(tmp_path: Path) -> None:
    log = make_log(tmp_path, max_bytes=9000, excerpt_chars=100)
    (tmp_path / "events.1.jsonl.gz.tmp").mkdir()  # gzip cannot write there
    emit_numbered(log, 20)
    log.close()
    lines = read_lines(tmp_path / "events.jsonl")
    [failure] = [line for line in lines if line["event"] == "log_archive_failed"]
    assert failure["error"].startswith("IsADirectoryError")
    assert (tmp_path / "events.jsonl.rotating").exists()  # kept until the next rotation
    assert not (tmp_path / "events.1.jsonl.gz").exists()


def test_100_mb_of_events_stay_under_the_bound(tmp_path: Path) -> None:
    max_bytes, keep = 1_000_000, 3
    log = make_log(tmp_path, max_bytes=max_bytes, keep=keep)
    output = "FAILED tests/test_x.py::test_a - assert 1 == 2\n" * 2100  # ~100 kB
    payload = 0
    for index in range(1000):
        unique = f"item {index}: {output}"
        payload += len(unique)
        log.emit({"event": "agent_finished", "index": index, "status": "failed", "output": unique})
    for index in range(8000):
        command = f"step {index} " + "pytest -q tests/ " * 20
        payload += len(command)
        log.emit({"event": "step_finished", "index": index, "command": command, "exit_code": 1})
    log.close()
    assert payload > 100_000_000
    names = sorted(os.listdir(tmp_path))
    assert names == [f"events.{number}.jsonl.gz" for number in range(1, keep + 1)] + [
        "events.jsonl"
    ]
    on_disk = sum((tmp_path / name).stat().st_size for name in names)
    assert on_disk < (keep + 1) * max_bytes
    assert (tmp_path / "events.jsonl").stat().st_size <= max_bytes
    for number in range(1, keep + 1):
        archived = gzip.decompress((tmp_path / f"events.{number}.jsonl.gz").read_bytes())
        assert len(archived) <= max_bytes
        assert all(json.loads(line) for line in archived.splitlines())
    assert read_lines(tmp_path / "events.jsonl")[-1]["index"] == 7999
    assert log.dropped == 0


# ---- failures --------------------------------------------------------------------------------


def test_a_write_the_disk_refuses_drops_the_event_and_reports_it_later(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").symlink_to("/dev/full")
    log = make_log(tmp_path)
    log.emit({"event": "lost", "n": 1})
    log.emit({"event": "lost", "n": 2})
    assert log.dropped == 2
    (tmp_path / "events.jsonl").unlink()
    log.emit({"event": "kept"})
    log.close()
    dropped, kept = read_lines(tmp_path / "events.jsonl")
    assert dropped["event"] == "events_dropped"
    assert dropped["count"] == 2
    assert "No space left on device" in dropped["error"]
    assert kept["event"] == "kept"


def test_closing_on_a_full_disk_does_not_raise(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").symlink_to("/dev/full")
    log = make_log(tmp_path)
    log.emit({"event": "f", "error": "x"})
    log.close()
    assert log.dropped == 1


def test_emitting_after_close_is_counted_not_raised(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.emit({"event": "a"})
    log.close()
    log.close()
    log.emit({"event": "late"})
    assert log.dropped == 1
    assert [line["event"] for line in read_lines(tmp_path / "events.jsonl")] == ["a"]


def test_a_log_that_received_nothing_leaves_no_file(tmp_path: Path) -> None:
    EventLog(str(tmp_path / "new" / "dir")).close()
    assert os.listdir(tmp_path / "new" / "dir") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "a/b"}, "`name` must be 1-100 letters, digits, '.', '_' or '-'"),
        ({"name": ""}, "`name` must be"),
        ({"name": ".hidden"}, "`name` must be"),
        ({"keep": -1}, "`keep` must be non-negative, got -1"),
        ({"excerpt_chars": 0}, "`excerpt_chars` must be positive, got 0"),
        (
            {"max_bytes": 12191},
            r"`max_bytes` must be at least 12192 \(8 \* excerpt_chars \+ 8192\)",
        ),
    ],
)
def test_invalid_options_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventLog(str(tmp_path), **options)


# ---- FanoutSink ------------------------------------------------------------------------------


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[Mapping[str, Any]] = []
        self.fail = fail

    def emit(self, event: Mapping[str, Any]) -> None:
        self.events.append(event)
        if self.fail:
            raise RuntimeError(f"sink {id(self)} broke")


def test_fanout_sends_every_event_to_every_sink_in_order(tmp_path: Path) -> None:
    first, second = Recorder(), Recorder()
    with make_log(tmp_path) as log:
        sink = FanoutSink(first, log, second)
        sink.emit({"event": "a"})
        sink.emit({"event": "b"})
    assert [event["event"] for event in first.events] == ["a", "b"]
    assert first.events == second.events
    assert [line["event"] for line in read_lines(tmp_path / "events.jsonl")] == ["a", "b"]
    assert sink.sinks == (first, log, second)


def test_fanout_delivers_to_the_others_when_a_sink_raises() -> None:
    broken, healthy = Recorder(fail=True), Recorder()
    with pytest.raises(RuntimeError, match="broke"):
        FanoutSink(broken, healthy).emit({"event": "a"})
    assert healthy.events == [{"event": "a"}]
    with pytest.raises(ExceptionGroup) as raised:
        FanoutSink(Recorder(fail=True), healthy, Recorder(fail=True)).emit({"event": "b"})
    assert len(raised.value.exceptions) == 2
    assert healthy.events[-1] == {"event": "b"}


def test_fanout_of_nothing_accepts_events() -> None:
    FanoutSink().emit({"event": "a"})
