"""Dependency analysis: footprints, overlapping names, edges, parallel batches, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pure.dependency_analysis import (
    EVERYTHING,
    CommandGraph,
    Dependency,
    Footprint,
    analyze_dependencies,
    overlaps,
    step_footprint,
)
from pure.workflow import ClaudeCommand, OnFailure, ShellCommand, Step, WriteFileCommand
from tests.pure.workflow_helpers import parse_ok


def shell(
    text: str = "true",
    *,
    reads: tuple[str, ...] | None = None,
    writes: tuple[str, ...] | None = None,
    capture: str | None = None,
) -> Step:
    return Step(ShellCommand(text), capture=capture, reads=reads, writes=writes)


# --- footprints -----------------------------------------------------------------------------


def test_a_step_without_footprint_touches_everything() -> None:
    assert step_footprint(shell("echo ${a}", capture="b")) == Footprint(None, None)


def test_a_declared_footprint_adds_references_captures_and_handlers() -> None:
    step = Step(
        WriteFileCommand("out/${name}.txt", "${body} $USER"),
        env={"X": "${env_value}"},
        when="${flag} == true",
        working_dir="${dir}",
        on_failure=OnFailure(
            (Step(ClaudeCommand("/fix ${shell.output}"), capture="fixed", commit_required=True),)
        ),
        on_success=(Step(ShellCommand("notify ${who}"), capture="notified"),),
        reads=("config.json",),
        writes=("out/",),
    )
    footprint = step_footprint(step)
    assert footprint.reads == frozenset(
        {
            "config.json",
            "name",
            "body",
            "USER",
            "env_value",
            "flag",
            "dir",
            "shell",
            "shell.output",
            "who",
        }
    )
    assert footprint.writes == frozenset({"out/", "fixed", ".git", "notified"})


def test_an_undeclared_side_is_everything() -> None:
    assert step_footprint(shell("cat ${x}", reads=("a",))) == Footprint(frozenset({"a", "x"}), None)
    assert step_footprint(shell("true", writes=(), capture="c")) == Footprint(
        None, frozenset({"c"})
    )


# --- overlap ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("a", "a"),
        ("metadata", "metadata.commit"),
        ("item.tags", "item.tags[0]"),
        ("src", "src/main.rs"),
        ("src/", "src/main.rs"),
        ("./src/main.rs", "src/main.rs"),
        ("reports/*.json", "reports/a.json"),
        ("reports/*.json", "reports"),
        ("*.json", "anything"),
        ("out/?", "out/x/y"),
        (EVERYTHING, "x"),
        ("x", EVERYTHING),
    ],
)
def test_overlapping_names(first: str, second: str) -> None:
    assert overlaps(first, second)
    assert overlaps(second, first)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("a", "b"),
        ("meta", "metadata"),
        ("src/main.rs", "src/lib.rs"),
        ("reports/*.json", "logs/a.json"),
        ("file_count", "file"),
    ],
)
def test_separate_names(first: str, second: str) -> None:
    assert not overlaps(first, second)
    assert not overlaps(second, first)


# --- edges and batches --------------------------------------------------------------------------


def test_read_after_write_write_after_write_and_write_after_read() -> None:
    steps = [
        shell("count", capture="n", reads=(), writes=()),
        shell("echo ${n}", reads=(), writes=()),
        shell("rewrite", writes=("n",), reads=()),
        shell("other", reads=("z",), writes=("w",)),
    ]
    graph = analyze_dependencies(steps)
    assert graph.edges == (
        Dependency(0, 1, "read-after-write", "n"),
        Dependency(0, 2, "write-after-write", "n"),
        Dependency(1, 2, "write-after-read", "n"),
    )
    assert graph.parallel_batches() == [[0, 3], [1], [2]]
    assert graph.predecessors(2) == (0, 1)
    assert graph.predecessors(3) == ()


def test_steps_that_touch_nothing_run_alongside_everything() -> None:
    steps = [shell("a"), shell("echo hi", reads=(), writes=()), shell("b")]
    graph = analyze_dependencies(steps)
    assert graph.edges == (Dependency(0, 2, "read-after-write", EVERYTHING),)
    assert graph.parallel_batches() == [[0, 1], [2]]


def test_plain_setup_steps_stay_sequential() -> None:
    workflow = parse_ok(
        """
        name: x
        setup:
          - shell: "find src -name '*.rs' | wc -l"
            capture: total
          - shell: git rev-parse HEAD
          - shell: echo ${total}
        map: {input: i, agent_template: [{shell: a}]}
        """
    )
    assert analyze_dependencies(workflow.setup.steps).parallel_batches() == [[0], [1], [2]]


def test_declared_footprints_let_independent_setup_steps_run_in_parallel() -> None:
    workflow = parse_ok(
        """
        name: x
        setup:
          - shell: "find src -name '*.rs' | wc -l"
            capture: total
            reads: [src]
            writes: []
          - shell: git rev-parse --short HEAD
            capture: commit
            reads: [.git]
            writes: []
          - shell: |
              echo '{"commit": "${commit}", "total": ${total}}' > meta.json
            reads: []
            writes: [meta.json]
          - shell: cat meta.json
            reads: [meta.json]
            writes: []
        map: {input: i, agent_template: [{shell: a}]}
        """
    )
    graph = analyze_dependencies(workflow.setup.steps)
    assert graph.parallel_batches() == [[0, 1], [2], [3]]
    assert [(e.before, e.after, e.kind, e.resource) for e in graph.edges] == [
        (0, 2, "read-after-write", "total"),
        (1, 2, "read-after-write", "commit"),
        (2, 3, "read-after-write", "meta.json"),
    ]


def test_commit_required_steps_never_commit_at_the_same_time() -> None:
    steps = [
        Step(ShellCommand("git commit -am a"), commit_required=True, reads=(), writes=()),
        Step(ShellCommand("git commit -am b"), commit_required=True, reads=(), writes=()),
    ]
    assert analyze_dependencies(steps).parallel_batches() == [[0], [1]]


def test_no_steps() -> None:
    graph = analyze_dependencies([])
    assert graph == CommandGraph(0, ())
    assert graph.parallel_batches() == []


# --- properties ---------------------------------------------------------------------------------

_NAMES = ["a", "b", "a.x", "src", "src/x.rs", "out/*.txt", "out/1.txt", "c"]
_name_sets = st.none() | st.lists(st.sampled_from(_NAMES), max_size=3).map(tuple)


@st.composite
def _steps(draw: st.DrawFn) -> Step:
    reference = draw(st.sampled_from(["", " ${a}", " ${b.y}", " $c", " ${src}"]))
    return Step(
        ShellCommand("run" + reference),
        capture=draw(st.none() | st.sampled_from(["a", "b", "a.x", "c"])),
        reads=draw(_name_sets),
        writes=draw(_name_sets),
        commit_required=draw(st.booleans()),
    )


_step_lists = st.lists(_steps(), max_size=12)


def _batch_of(batches: list[list[int]]) -> dict[int, int]:
    return {index: number for number, batch in enumerate(batches) for index in batch}


@settings(max_examples=300, deadline=None)
@given(_step_lists)
def test_every_index_appears_exactly_once_in_ascending_batches(steps: list[Step]) -> None:
    batches = analyze_dependencies(steps).parallel_batches()
    flat = [index for batch in batches for index in batch]
    assert sorted(flat) == list(range(len(steps)))
    assert all(batch == sorted(batch) and batch for batch in batches)


@settings(max_examples=300, deadline=None)
@given(_step_lists)
def test_every_edge_goes_to_a_later_batch(steps: list[Step]) -> None:
    graph = analyze_dependencies(steps)
    batch = _batch_of(graph.parallel_batches())
    for edge in graph.edges:
        assert edge.before < edge.after
        assert batch[edge.before] < batch[edge.after]


@settings(max_examples=300, deadline=None)
@given(_step_lists)
def test_batches_are_earliest_layers(steps: list[Step]) -> None:
    graph = analyze_dependencies(steps)
    batch = _batch_of(graph.parallel_batches())
    for index in range(len(steps)):
        before = graph.predecessors(index)
        expected = max((batch[p] + 1 for p in before), default=0)
        assert batch[index] == expected


@settings(max_examples=300, deadline=None)
@given(_step_lists)
def test_no_dependency_is_missing(steps: list[Step]) -> None:
    """Any two steps touching a common name (by plain equality) are ordered."""
    graph = analyze_dependencies(steps)
    ordered = {(edge.before, edge.after) for edge in graph.edges}
    footprints = [step_footprint(step) for step in steps]

    def touches(first: frozenset[str] | None, second: frozenset[str] | None) -> bool:
        if first is None or second is None:
            return bool(first is None or first) and bool(second is None or second)
        return bool(first & second)

    for j in range(len(steps)):
        for i in range(j):
            early, late = footprints[i], footprints[j]
            conflict = (
                touches(early.writes, late.reads)
                or touches(early.writes, late.writes)
                or touches(early.reads, late.writes)
            )
            if conflict:
                assert (i, j) in ordered


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["echo ${a}", "make", "cat x"]), max_size=10))
def test_workflows_without_footprints_run_one_step_per_batch(texts: list[str]) -> None:
    steps = [Step(ShellCommand(text)) for text in texts]
    assert analyze_dependencies(steps).parallel_batches() == [[i] for i in range(len(steps))]


@settings(max_examples=200, deadline=None)
@given(_step_lists)
def test_analysis_is_deterministic(steps: list[Step]) -> None:
    first = analyze_dependencies(steps)
    again = analyze_dependencies(list(steps))
    assert first == again
    assert first.parallel_batches() == again.parallel_batches()
