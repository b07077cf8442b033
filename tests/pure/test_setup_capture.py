"""``setup.capture_outputs``: source, ``pattern``, ``json_path``, ``multiline``, ``default``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from pure.setup_capture import extract_setup_capture
from pure.workflow import CaptureMultiline, CaptureSource, SetupCapture


def capture(**fields: Any) -> SetupCapture:
    return SetupCapture(0, **fields)


@pytest.mark.parametrize(
    ("source", "stdout", "stderr", "expected"),
    [
        ("stdout", "out\n", "err\n", "out"),
        ("stderr", "out\n", "err\n", "err"),
        ("both", "out", "err", "out\nerr"),
        ("both", "out\n", "", "out"),
        ("combined", "out-", "err", "out-err"),
        ("combined", "", "err\n", "err"),
    ],
)
def test_the_source_picks_the_stream(
    source: CaptureSource, stdout: str, stderr: str, expected: str
) -> None:
    assert extract_setup_capture(capture(source=source), stdout, stderr) == Success(expected)


@pytest.mark.parametrize(
    ("multiline", "expected"),
    [
        ("preserve", "  first \n\n second\n  last  "),
        ("join", "first second last"),
        ("first_line", "  first "),
        ("last_line", "  last  "),
        ("array", ["  first ", "", " second", "  last  "]),
    ],
)
def test_multiline_shapes_the_lines(multiline: CaptureMultiline, expected: Any) -> None:
    output = "  first \n\n second\n  last  \n"
    assert extract_setup_capture(capture(multiline=multiline), output, "") == Success(expected)


@pytest.mark.parametrize(
    ("multiline", "expected"),
    [("preserve", ""), ("join", ""), ("first_line", ""), ("last_line", ""), ("array", [])],
)
def test_multiline_of_empty_output(multiline: CaptureMultiline, expected: Any) -> None:
    assert extract_setup_capture(capture(multiline=multiline), "", "") == Success(expected)


def test_output_beyond_max_size_characters_is_cut_first() -> None:
    assert extract_setup_capture(capture(max_size=4), "abcdef\n", "") == Success("abcd")
    assert extract_setup_capture(capture(max_size=3), "né€ß", "") == Success("né€")
    # The cut comes before the pattern: the number past the limit is not seen.
    cut = capture(max_size=8, pattern=r"total=(\d+)")
    assert extract_setup_capture(cut, "total=12345", "") == Success("12")


@given(st.text(), st.integers(min_value=0, max_value=40))
def test_preserve_is_the_kept_output_without_trailing_newlines(stdout: str, size: int) -> None:
    result = extract_setup_capture(capture(max_size=size), stdout, "ignored")
    assert result == Success(stdout[:size].rstrip("\r\n"))


def test_the_first_group_of_the_pattern_is_the_value() -> None:
    found = capture(pattern=r'"total": (\d+)')
    assert extract_setup_capture(found, '{"total": 42, "other": 7}', "") == Success("42")


def test_a_pattern_without_groups_gives_the_whole_match() -> None:
    assert extract_setup_capture(capture(pattern=r"v\d+\.\d+"), "release v1.25\n", "") == Success(
        "v1.25"
    )


def test_the_pattern_finds_the_first_match_and_anchors_at_lines() -> None:
    output = "name: a\nversion: 1\nversion: 2\n"
    assert extract_setup_capture(capture(pattern=r"^version: (\d)$"), output, "") == Success("1")


def test_a_pattern_that_does_not_match_is_a_failure() -> None:
    assert extract_setup_capture(capture(pattern=r"total=(\d+)"), "no totals", "") == Failure(
        "pattern 'total=(\\\\d+)' does not match the output"
    )


def test_a_first_group_that_takes_no_part_in_the_match_is_a_failure() -> None:
    optional = capture(pattern=r"version(?: (\d+))?")
    assert extract_setup_capture(optional, "version 3", "") == Success("3")
    assert extract_setup_capture(optional, "version", "") == Failure(
        "pattern 'version(?: (\\\\d+))?' matches without its first group"
    )
    assert extract_setup_capture(
        capture(pattern=optional.pattern, default="0"), "version", ""
    ) == Success("0")


def test_an_empty_first_group_is_an_empty_value() -> None:
    assert extract_setup_capture(capture(pattern=r"x=(\d*)"), "x=", "") == Success("")


def test_the_pattern_result_is_then_shaped() -> None:
    shaped = capture(pattern=r"BEGIN\n(.*)\nEND", multiline="array")
    output = "noise\nBEGIN\nline\nEND\n"
    assert extract_setup_capture(shaped, output, "") == Success(["line"])


def test_json_path_selects_one_value() -> None:
    report = {"summary": {"total": 7, "failed": 0}}
    selected = capture(json_path="$.summary.total")
    assert extract_setup_capture(selected, json.dumps(report) + "\n", "") == Success(7)


def test_json_path_with_several_matches_gives_a_list() -> None:
    document = {"items": [{"id": "a", "ok": True}, {"id": "b", "ok": False}, {"id": "c"}]}
    every_id = capture(json_path="$.items[*].id")
    assert extract_setup_capture(every_id, json.dumps(document), "") == Success(["a", "b", "c"])
    filtered = capture(json_path="$.items[?(@.ok == true)].id")
    assert extract_setup_capture(filtered, json.dumps(document), "") == Success("a")


def test_json_path_value_is_not_shaped_by_multiline() -> None:
    selected = capture(json_path="$.lines", multiline="join")
    assert extract_setup_capture(selected, '{"lines": "a\\nb"}', "") == Success("a\nb")


def test_json_path_applies_to_what_the_pattern_extracted() -> None:
    both = capture(pattern=r"RESULT: (.*)", json_path="$.n")
    assert extract_setup_capture(both, 'log line\nRESULT: {"n": 3}\n', "") == Success(3)


def test_json_path_on_output_that_is_not_json() -> None:
    assert extract_setup_capture(capture(json_path="$.a"), "oops", "") == Failure(
        "output is not JSON (Expecting value), so json_path cannot apply"
    )


def test_json_path_on_json_that_python_refuses_is_a_failure_not_a_crash() -> None:
    failure = extract_setup_capture(capture(json_path="$.a"), "9" * 5000, "").failure()
    assert failure.startswith("output is not JSON (Exceeds the limit (4300 digits)")
    deep = "[" * 100_000 + "]" * 100_000
    assert extract_setup_capture(capture(json_path="$.a"), deep, "") == Failure(
        "output is not JSON (nested too deeply), so json_path cannot apply"
    )


def test_json_path_that_selects_nothing() -> None:
    assert extract_setup_capture(capture(json_path="$.missing"), '{"a": 1}', "") == Failure(
        "json_path '$.missing' selects nothing"
    )


def test_an_invalid_json_path_is_a_failure() -> None:
    # The parser refuses such a path; a SetupCapture built in code is checked here too.
    assert extract_setup_capture(capture(json_path="$["), "{}", "") == Failure(
        "json_path: expected a JSONPath like '$.items[*]': Parse error near the end of string!"
    )


def test_a_json_path_that_cannot_apply_to_the_document_is_a_failure() -> None:
    mixed = '{"a": [{"x": 1}, {"x": "s"}]}'
    assert extract_setup_capture(capture(json_path="$.a[/x]"), mixed, "") == Failure(
        "json_path: could not apply '$.a[/x]' to the input: "
        "'<' not supported between instances of 'str' and 'int'"
    )
    assert extract_setup_capture(capture(json_path="$.a[/x]", default="-"), mixed, "") == Success(
        "-"
    )


@pytest.mark.parametrize(
    ("fields", "stdout"),
    [
        ({"pattern": r"total=(\d+)"}, "nothing"),
        ({"json_path": "$.a"}, "not json"),
        ({"json_path": "$.b"}, '{"a": 1}'),
    ],
)
def test_the_default_replaces_a_failed_extraction(fields: dict[str, Any], stdout: str) -> None:
    assert isinstance(extract_setup_capture(capture(**fields), stdout, ""), Failure)
    with_default = capture(default="fallback", **fields)
    assert extract_setup_capture(with_default, stdout, "") == Success("fallback")


def test_the_default_is_not_used_when_extraction_succeeds() -> None:
    found = capture(pattern=r"total=(\d+)", default="0")
    assert extract_setup_capture(found, "total=9", "") == Success("9")


def test_an_empty_default_still_replaces_a_failure() -> None:
    assert extract_setup_capture(capture(pattern="x", default=""), "y", "") == Success("")
