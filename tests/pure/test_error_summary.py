"""Error summaries of real tool outputs, the fallback, and bounded excerpts."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pure.error_summary import MAX_SUMMARY_LENGTH, Excerpt, excerpt, summarize_error

# ---- real outputs (trimmed copies of what the tools printed) ---------------------------------

PYTEST_FAILURES = """\
============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0
collected 4 items

test_x.py FF.F                                                           [100%]

=================================== FAILURES ===================================
____________________________________ test_a ____________________________________

    def test_a():
>       assert 1 == 2
E       assert 1 == 2

test_x.py:3: AssertionError
____________________________________ test_d ____________________________________

    def test_d():
>       raise ValueError("bad input")
E       ValueError: bad input

test_x.py:10: ValueError
=========================== short test summary info ============================
FAILED test_x.py::test_a - assert 1 == 2
FAILED test_x.py::test_b - AssertionError: assert '1' == '2'
FAILED test_x.py::test_d - ValueError: bad input
========================= 3 failed, 1 passed in 0.11s ==========================
"""

PYTEST_COLLECTION = """\
collected 4 items / 1 error

==================================== ERRORS ====================================
________________________ ERROR collecting test_coll.py _________________________
ImportError while importing test module '/tmp/samples/py/test_coll.py'.
Traceback:
test_coll.py:1: in <module>
    import nonexistent_mod
E   ModuleNotFoundError: No module named 'nonexistent_mod'
=========================== short test summary info ============================
ERROR test_coll.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
1 error in 0.22s
"""

RUFF_CONCISE = """\
lint.py:1:1: I001 [*] Import block is un-sorted or un-formatted
lint.py:1:8: F401 [*] `os` imported but unused
lint.py:2:8: F401 [*] `sys` imported but unused
lint.py:4:5: F841 Local variable `x` is assigned to but never used
lint.py:5:5: F841 Local variable `y` is assigned to but never used
lint.py:5:9: F541 [*] f-string without any placeholders
lint.py:6:5: PLR1711 [*] Useless `return` statement at end of function
Found 7 errors.
[*] 5 fixable with `--fix` (2 unsafe fixes available with `--fix --unsafe-fixes`).
"""

RUFF_FULL = """\
F401 [*] `os` imported but unused
 --> lint.py:1:8
  |
1 | import os
  |        ^^
2 | import sys
  |
help: Remove unused import: `os`

F841 Local variable `x` is assigned to but never used
 --> lint.py:4:5
  |
4 |     x = 1
  |     ^
  |

invalid-syntax: Expected an identifier
 --> syn.py:1:5
  |
1 | def (:
  |     ^

F401 [*] `sys` imported but unused
 --> lint.py:2:8

Found 4 errors.
[*] 2 fixable with `--fix`.
"""

MYPY = """\
lint.py:3: error: Function is missing a return type annotation  [no-untyped-def]
lint.py:3: note: Use "-> None" if function does not return a value
lint.py:8: error: Incompatible return value type (got "int", expected "str")  [return-value]
other.py:10: error: No return value expected  [return-value]
Found 3 errors in 2 files (checked 4 source files)
"""

CARGO_BUILD = """\
   Compiling rs v0.1.0 (/tmp/samples/rs)
error[E0425]: cannot find value `undefined_var` in this scope
 --> src/main.rs:4:20
  |
4 |     println!("{}", undefined_var);
  |                    ^^^^^^^^^^^^^ not found in this scope

error[E0308]: mismatched types
 --> src/main.rs:2:18
  |
2 |     let x: i32 = "a";
  |            ---   ^^^ expected `i32`, found `&str`

error[E0308]: mismatched types
 --> src/main.rs:3:17

Some errors have detailed explanations: E0308, E0425.
For more information about an error, try `rustc --explain E0308`.
error: could not compile `rs` (bin "rs") due to 3 previous errors
"""

CARGO_TEST = """\
running 3 tests
test tests::it_also_fails ... FAILED
test tests::it_works ... ok
test tests::it_fails ... FAILED

failures:

---- tests::it_fails stdout ----

thread 'tests::it_fails' (9785) panicked at src/main.rs:7:21:
assertion `left == right` failed
  left: 1
 right: 2

---- tests::it_also_fails stdout ----

thread 'tests::it_also_fails' (9784) panicked at src/main.rs:9:26:
boom

failures:
    tests::it_also_fails
    tests::it_fails

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.33s

error: test failed, to rerun pass `--bin rs`
"""

TRACEBACK_CHAINED = """\
Traceback (most recent call last):
  File "<string>", line 3, in <module>
KeyError: 'k'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "<string>", line 5, in <module>
    raise ValueError("bad input")
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
ValueError: bad input
"""

TRACEBACK_GROUP = """\
  + Exception Group Traceback (most recent call last):
  |   File "<string>", line 2, in <module>
  | ExceptionGroup: eg (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ExceptionGroup: inner (1 sub-exception)
    +-+---------------- 1 ----------------
      | Traceback (most recent call last):
      |   File "<string>", line 4, in f
      | TypeError: t
      +------------------------------------
    +---------------- 2 ----------------
    | ValueError: x
    +------------------------------------
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (PYTEST_FAILURES, "3 failed, 1 passed: first: test_x.py::test_a - assert 1 == 2"),
        (
            PYTEST_COLLECTION,
            "1 error during collection: first: test_coll.py - "
            "ModuleNotFoundError: No module named 'nonexistent_mod'",
        ),
        (RUFF_CONCISE, "7 lint errors: 2x F401, 2x F841, 1x F541, 1x I001, 1x PLR1711"),
        (RUFF_FULL, "4 lint errors: 2x F401, 1x F841, 1x invalid-syntax"),
        (
            MYPY,
            "3 type errors in 2 files: first: lint.py:3: error: "
            "Function is missing a return type annotation [no-untyped-def]",
        ),
        (
            CARGO_BUILD,
            "3 compile errors: 2x E0308, 1x E0425; first: src/main.rs:4:20: "
            "error[E0425]: cannot find value `undefined_var` in this scope",
        ),
        (CARGO_TEST, "2 failed, 1 passed: first: tests::it_also_fails - boom"),
        (TRACEBACK_CHAINED, "ValueError: bad input"),
        (TRACEBACK_GROUP, "ExceptionGroup: eg (2 sub-exceptions); first: TypeError: t"),
    ],
)
def test_real_tool_outputs(output: str, expected: str) -> None:
    assert summarize_error(output, exit_code=1) == expected


# ---- pytest ----------------------------------------------------------------------------------


def test_pytest_failure_reason_is_taken_from_its_section_when_the_summary_line_has_none() -> None:
    output = PYTEST_FAILURES.replace(
        "FAILED test_x.py::test_a - assert 1 == 2", "FAILED test_x.py::test_a"
    )
    assert summarize_error(output) == "3 failed, 1 passed: first: test_x.py::test_a - assert 1 == 2"


def test_pytest_failure_without_any_reason_names_the_test() -> None:
    output = "FAILED tests/test_a.py::test_one\n1 failed in 0.5s\n"
    assert summarize_error(output) == "1 failed: first: tests/test_a.py::test_one"


def test_pytest_without_short_summary_names_the_first_report_section() -> None:
    output = "\n".join(
        line for line in PYTEST_FAILURES.splitlines() if not line.startswith("FAILED")
    )
    assert summarize_error(output) == "3 failed, 1 passed: first: test_a - assert 1 == 2"


def test_pytest_section_without_e_line_gives_the_name_alone() -> None:
    output = "_____ test_setup _____\nsomething odd\n==== 1 error in 1.00s ====\n"
    assert summarize_error(output) == "1 error: first: test_setup"


def test_pytest_errors_at_setup_are_matched_to_their_section() -> None:
    output = (
        "______ ERROR at setup of test_e ______\n"
        "E       fixture 'nope' not found\n"
        "ERROR test_x.py::test_e\n"
        "==== 1 error in 0.01s ====\n"
    )
    assert summarize_error(output) == "1 error: first: test_x.py::test_e - fixture 'nope' not found"


def test_pytest_counts_alone_when_nothing_names_a_test() -> None:
    assert summarize_error("==== 2 failed, 5 passed, 1 warning in 65.12s (0:01:05) ====") == (
        "2 failed, 5 passed, 1 warning"
    )


def test_pytest_old_seconds_format_and_last_summary_wins() -> None:
    output = "=== 1 passed in 0.5 seconds ===\n=== 1 failed in 0.5 seconds ===\n"
    assert summarize_error(output) == "1 failed"


def test_pytest_all_passed_but_coverage_failed() -> None:
    output = (
        "FAIL Required test coverage of 100% not reached. Total coverage: 85.00%\n"
        "=== 10 passed in 1.20s ===\n"
    )
    assert summarize_error(output) == (
        "FAIL Required test coverage of 100% not reached. Total coverage: 85.00% (10 passed)"
    )


def test_pytest_no_tests_ran_with_usage_error() -> None:
    output = "ERROR: file or directory not found: tests/nope.py\n\nno tests ran in 0.01s\n"
    assert summarize_error(output, exit_code=4) == (
        "ERROR: file or directory not found: tests/nope.py (no tests ran)"
    )


def test_pytest_all_passed_and_nothing_else_wrong_falls_back_to_the_last_line() -> None:
    output = "=== 3 passed in 0.10s ===\nteardown script: permission denied\n"
    assert summarize_error(output) == "teardown script: permission denied"


def test_pytest_summary_needs_a_duration() -> None:
    assert summarize_error("3 failed, 1 passed") == "3 failed, 1 passed"
    assert summarize_error("FAILED a::b - x\n3 failed\n") == "3 failed"


# ---- cargo test ------------------------------------------------------------------------------


def test_cargo_test_old_panic_format() -> None:
    output = (
        "test it_fails ... FAILED\n"
        "thread 'main' panicked at 'other', src/lib.rs:1:1\n"
        "thread 'it_fails' panicked at 'assertion failed: x', src/lib.rs:7:5\n"
        "test result: FAILED. 0 passed; 1 failed; 0 ignored\n"
    )
    assert summarize_error(output) == "1 failed, 0 passed: first: it_fails - assertion failed: x"


def test_cargo_test_sums_every_test_binary() -> None:
    output = (
        "test result: ok. 4 passed; 0 failed; 0 ignored\n"
        "test a::b ... FAILED\n"
        "test result: FAILED. 2 passed; 1 failed; 0 ignored\n"
    )
    assert summarize_error(output) == "1 failed, 6 passed: first: a::b"


def test_cargo_test_panic_message_missing_at_the_end() -> None:
    output = (
        "test result: FAILED. 0 passed; 1 failed; 0 ignored\n"
        "test x ... FAILED\n"
        "thread 'x' panicked at src/lib.rs:1:1:\n"
    )
    assert summarize_error(output) == "1 failed, 0 passed: first: x"


def test_cargo_test_without_test_lines_gives_counts() -> None:
    output = "test result: FAILED. 3 passed; 2 failed; 0 ignored\n"
    assert summarize_error(output) == "2 failed, 3 passed"


def test_cargo_test_that_passed_is_not_a_test_failure() -> None:
    output = "test result: ok. 3 passed; 0 failed; 0 ignored\nerror: linker failed\n"
    assert summarize_error(output) == "error: linker failed"


# ---- mypy ------------------------------------------------------------------------------------


def test_mypy_without_found_line_counts_what_it_sees() -> None:
    output = (
        "a.py:1: error: Bad  [misc]\nb.py:2:5: error: Worse  [misc]\na.py:3: error: X  [misc]\n"
    )
    assert summarize_error(output) == "3 type errors in 2 files: first: a.py:1: error: Bad [misc]"


def test_mypy_single_error_is_singular() -> None:
    output = "a.py: error: Cannot read file  [misc]\n"
    assert (
        summarize_error(output)
        == "1 type error in 1 file: first: a.py: error: Cannot read file [misc]"
    )


def test_mypy_found_line_without_error_lines() -> None:
    assert summarize_error("Found 12 errors in 1 file (checked 3 source files)") == (
        "12 type errors in 1 file"
    )


def test_error_lines_without_mypy_codes_are_mypy_only_when_the_command_says_so() -> None:
    output = "main.c:3: error: expected ';'\n"
    assert summarize_error(output) == "main.c:3: error: expected ';'"
    assert summarize_error(output, command="mypy --strict .") == (
        "1 type error in 1 file: first: main.c:3: error: expected ';'"
    )


# ---- lint ------------------------------------------------------------------------------------


def test_lint_counts_by_code_most_frequent_first() -> None:
    lines = (
        ["x.py:1:1: F401 'os' imported but unused"] * 40
        + ["x.py:2:1: F841 local variable"] * 10
        + ["x.py:3:1: F541 f-string"] * 3
    )
    assert summarize_error("\n".join(lines), command="flake8") == (
        "53 lint errors: 40x F401, 10x F841, 3x F541"
    )


def test_lint_pylint_codes_and_a_single_error() -> None:
    output = "x.py:1:0: C0114: Missing module docstring (missing-module-docstring)\n"
    assert summarize_error(output) == "1 lint error: 1x C0114"


def test_lint_many_codes_and_lines_not_shown() -> None:
    codes = [f"E{100 + index}" for index in range(10)]
    lines = [f"x.py:{index}:1: {code} msg" for index, code in enumerate(codes)] + ["x.py:1: E100 x"]
    output = "\n".join([*lines, "Found 20 errors."])
    assert summarize_error(output) == (
        "20 lint errors: 2x E100, 1x E101, 1x E102, 1x E103, 1x E104, 1x E105, 1x E106, "
        "1x E107, 2x in 2 more codes, 9x not shown"
    )


def test_lint_full_format_header_needs_its_arrow_line() -> None:
    assert summarize_error("F401 unused import") == "F401 unused import"
    assert summarize_error("F401 unused import\nno arrow here") == "no arrow here"


# ---- cargo build -----------------------------------------------------------------------------


def test_rustc_old_trailer_and_errors_without_codes() -> None:
    output = (
        "error: expected one of `;` or `}`\n"
        "  --> src/lib.rs:3:9\n"
        "error: unused import\n"
        "error: aborting due to previous error\n"
    )
    assert summarize_error(output) == (
        "2 compile errors: first: src/lib.rs:3:9: error: expected one of `;` or `}`"
    )


def test_rust_total_from_trailer_counts_errors_not_shown() -> None:
    output = "error[E0308]: mismatched types\nerror: aborting due to 4 previous errors\n"
    assert summarize_error(output) == (
        "4 compile errors: 1x E0308, 3x not shown; first: error[E0308]: mismatched types"
    )


def test_rust_codes_and_uncoded_errors_together() -> None:
    output = "error: oops\nerror[E0425]: missing\n"
    assert summarize_error(output, command="cargo build") == (
        "2 compile errors: 1x E0425, 1x other; first: error: oops"
    )


def test_plain_error_lines_are_not_rust_unless_the_command_is() -> None:
    output = "error: pathspec 'nope' did not match any file(s) known to git\n"
    assert summarize_error(output) == output.strip()
    assert summarize_error(output, command="rustc main.rs") == (
        "1 compile error: first: error: pathspec 'nope' did not match any file(s) known to git"
    )


def test_rust_trailer_without_a_count_signs_the_output() -> None:
    output = "error: cannot find crate `x`\nerror: build failed\n"
    assert summarize_error(output) == "1 compile error: first: error: cannot find crate `x`"


def test_rust_trailer_alone_is_not_a_summary() -> None:
    output = "error: could not compile `x` due to 2 previous errors\nwarning: done\n"
    assert summarize_error(output) == "warning: done"


# ---- Python tracebacks -----------------------------------------------------------------------


def test_traceback_keeps_the_first_line_of_a_multi_line_message() -> None:
    output = (
        'Traceback (most recent call last):\n  File "<string>", line 1\n'
        "RuntimeError: multi\nline message\n"
    )
    assert summarize_error(output) == "RuntimeError: multi"


def test_traceback_cut_before_its_exception_falls_back() -> None:
    output = 'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
    assert summarize_error(output) == 'File "x.py", line 1, in <module>'


def test_exception_group_with_only_nested_groups_names_the_group() -> None:
    output = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "x.py", line 1, in <module>\n'
        "  | ExceptionGroup: eg (1 sub-exception)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | ExceptionGroup: inner (1 sub-exception)\n"
    )
    assert summarize_error(output) == "ExceptionGroup: eg (1 sub-exception)"


def test_traceback_words_inside_a_line_are_not_a_traceback() -> None:
    output = "see the log: Traceback (most recent call last): above\nstep failed\n"
    assert summarize_error(output) == "step failed"


def test_exception_without_message() -> None:
    output = (
        'Traceback (most recent call last):\n  File "x.py", line 9, in run\nKeyboardInterrupt\n'
    )
    assert summarize_error(output) == "KeyboardInterrupt"


# ---- fallback, cleaning, bounds --------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "exit_code", "expected"),
    [
        ("", 3, "exit code 3"),
        ("  \n\r\n\t", 2, "exit code 2"),
        ("", None, "no output"),
        ("building...\nlink failed: out of memory\n\n", 1, "link failed: out of memory"),
        ("real error\nmake: *** [Makefile:3: all] Error 1\n", 2, "real error"),
        ("make[1]: *** [x] Error 1\nmake: *** [all] Error 2\n", 2, "make: *** [all] Error 2"),
        ("\x1b[31merror\x1b[0m: \x1b[1mboom\x1b[0m", 1, "error: boom"),
        ("progress 10%\rprogress 100%\r\ndone badly", 1, "done badly"),
        ("progress 10%\rfailed at 50%\r  \n", 1, "failed at 50%"),
        ("tab\there\x00and\x07bell", 1, "tab here and bell"),
    ],
)
def test_fallback_and_cleaning(output: str, exit_code: int | None, expected: str) -> None:
    assert summarize_error(output, exit_code=exit_code) == expected


def test_long_lines_are_cut_with_an_ellipsis() -> None:
    summary = summarize_error("x" * 500)
    assert len(summary) == MAX_SUMMARY_LENGTH
    assert summary.endswith("...")


def test_huge_outputs_are_read_from_head_and_tail() -> None:
    output = "FAILED t.py::test_one - boom\n" + "noise\n" * 400_000 + "=== 1 failed in 9.00s ===\n"
    assert summarize_error(output) == "1 failed: first: t.py::test_one - boom"


def test_command_hint_tries_its_tool_first() -> None:
    # Both a lint line and a Rust error: the default order picks lint, the command picks cargo.
    output = "x.py:1:1: F401 unused\nerror[E0308]: mismatched types\n"
    assert summarize_error(output) == "1 lint error: 1x F401"
    assert summarize_error(output, command="cargo build --release") == (
        "1 compile error: 1x E0308; first: error[E0308]: mismatched types"
    )
    assert summarize_error(output, command="./build.sh") == "1 lint error: 1x F401"


_FRAGMENTS = st.sampled_from(
    [
        "FAILED a.py::t - x",
        "ERROR a.py",
        "=== 1 failed, 2 passed in 0.1s ===",
        "no tests ran in 1s",
        "Interrupted: 2 errors during collection",
        "___ t ___",
        "E   boom",
        "x.py:1:2: F401 y",
        "F401 [*] z",
        " --> a.py:1:2",
        "Found 3 errors.",
        "Found 2 errors in 1 file (checked 2 source files)",
        "a.py:3: error: bad  [misc]",
        "error[E0308]: m",
        "error: aborting due to 2 previous errors",
        "test result: FAILED. 1 passed; 1 failed; 0 ignored",
        "test a ... FAILED",
        "thread 'a' panicked at x.rs:1:1:",
        "Traceback (most recent call last):",
        "  + Exception Group Traceback (most recent call last):",
        "  | ValueError: v",
        "  +-+---- 1 ----",
        '  File "x", line 1',
        "make: *** [all] Error 1",
        "",
        "\r",
        "\x1b[0m",
        "\u2028",
    ]
)
_OUTPUTS = st.one_of(
    st.text(),
    st.lists(st.one_of(_FRAGMENTS, st.text(max_size=20)), max_size=30).map("\n".join),
)


@settings(max_examples=300, deadline=None)
@given(
    _OUTPUTS,
    st.one_of(st.none(), st.integers(-(2**31), 2**31)),
    st.one_of(st.none(), st.sampled_from(["pytest", "mypy", "ruff", "cargo", "rustc"]), st.text()),
)
def test_summary_is_always_one_bounded_non_empty_line(
    output: str, exit_code: int | None, command: str | None
) -> None:
    summary = summarize_error(output, exit_code=exit_code, command=command)
    assert summary
    assert len(summary) <= MAX_SUMMARY_LENGTH
    assert summary.splitlines() == [summary]
    assert summary == summary.strip()


# ---- excerpt ---------------------------------------------------------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_short_text_is_kept_whole() -> None:
    assert excerpt("hello", 5) == Excerpt("hello", 5, _sha("hello"))


def test_long_text_keeps_head_and_tail_around_a_marker() -> None:
    text = "0123456789abcdef"
    assert excerpt(text, 5) == Excerpt("012\n... [11 characters omitted] ...\nef", 16, _sha(text))


def test_zero_limit_keeps_only_the_marker() -> None:
    assert excerpt("abc", 0).head_and_tail == "\n... [3 characters omitted] ...\n"


def test_default_limit_is_500() -> None:
    cut = excerpt("x" * 1000)
    assert cut.head_and_tail == "x" * 250 + "\n... [500 characters omitted] ...\n" + "x" * 250


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="`limit` must be non-negative, got -1"):
        excerpt("abc", -1)


def test_lone_surrogates_are_hashed_not_refused() -> None:
    assert excerpt("\udc80").sha256 == hashlib.sha256(b"\xed\xb2\x80").hexdigest()


@given(st.text(), st.integers(0, 50))
def test_excerpt_keeps_at_most_limit_characters_of_the_text(text: str, limit: int) -> None:
    cut = excerpt(text, limit)
    assert cut.total_length == len(text)
    assert cut.sha256 == _sha(text)
    if len(text) <= limit:
        assert cut.head_and_tail == text
    else:
        head, _, tail = cut.head_and_tail.partition(f"\n... [{len(text) - limit} characters")
        assert text.startswith(head)
        assert len(head) == (limit + 1) // 2
        kept_tail = tail.partition("omitted] ...\n")[2]
        assert text.endswith(kept_tail)
        assert len(kept_tail) == limit // 2
