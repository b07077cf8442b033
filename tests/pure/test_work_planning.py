"""Work planning: selection, filter, sort, distinct, offset, max_items, assignment and names."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from pure.json_values import order_key
from pure.work_planning import (
    WORKTREE_NAME_PATTERN,
    PlanningError,
    SelectionConfig,
    WorkAssignment,
    canonical_json,
    item_key,
    plan_work,
    plan_work_assignments,
    validate_selection,
    worktree_name,
)


@attrs.frozen
class Selection:
    """A stand-in for the workflow's MapConfig (any object with these attributes will do)."""

    json_path: str | None = None
    filter: str | None = None
    sort_by: str | None = None
    distinct: str | None = None
    offset: int = 0
    max_items: int | None = None


def items_of(document: Any, **keys: Any) -> list[Any]:
    config: SelectionConfig = Selection(**keys)
    return [assignment.item for assignment in plan_work_assignments(document, config)]


def planning_error(document: Any, **keys: Any) -> PlanningError:
    result = plan_work(document, Selection(**keys))
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, PlanningError)
    with pytest.raises(PlanningError) as raised:
        plan_work_assignments(document, Selection(**keys))
    assert (raised.value.key, raised.value.message, raised.value.column) == (
        error.key,
        error.message,
        error.column,
    )
    return error


DOCUMENT: dict[str, Any] = {
    "items": [
        {"id": "a", "severity": "high", "priority": 2},
        {"id": "b", "severity": "low", "priority": 9},
        {"id": "c", "severity": "critical", "priority": 5},
        {"id": "d", "severity": "high", "priority": 7},
    ],
    "files": ["x.rs", "y.rs"],
}


# Selection with json_path.


@pytest.mark.parametrize(
    ("json_path", "expected"),
    [
        ("$.items[*]", DOCUMENT["items"]),
        ("$.files[*]", ["x.rs", "y.rs"]),
        ("$.items[*].id", ["a", "b", "c", "d"]),
        ("$.items[?(@.priority > 5)].id", ["b", "d"]),
        ("$.items[0:2].id", ["a", "b"]),
        ("$.files", [["x.rs", "y.rs"]]),
        ("$.nothing[*]", []),
        ("$.items[?(@.priority > 100)]", []),
        ("  ", DOCUMENT["items"]),
    ],
)
def test_json_path_selects_the_items(json_path: str, expected: list[Any]) -> None:
    document: Any = DOCUMENT if json_path.strip() else DOCUMENT["items"]
    assert items_of(document, json_path=json_path) == expected


def test_the_prodigy_root_path_selects_a_top_level_array() -> None:
    assert items_of([1, {"a": 2}, "x"], json_path="$[*]") == [1, {"a": 2}, "x"]
    assert items_of({"debt_items": [{"k": 1}]}, json_path="$.debt_items[*]") == [{"k": 1}]


def test_without_json_path_an_array_document_is_the_item_list() -> None:
    assert items_of([3, 1, 2]) == [3, 1, 2]
    assert items_of((3, 1)) == [3, 1]
    assert items_of([]) == []


@pytest.mark.parametrize(
    ("document", "found"),
    [
        ({"items": [], "meta": 1}, "found an object with keys 'items', 'meta'"),
        ("text", "found the string 'text'"),
        (None, "found null"),
        (3, "found the number 3"),
    ],
)
def test_without_json_path_anything_but_an_array_is_a_planning_error(
    document: Any, found: str
) -> None:
    error = planning_error(document)
    assert error.key == "map.input"
    assert "expected a JSON array of items" in error.message
    assert found in error.message
    assert "map.json_path" in error.message
    assert str(error).startswith("map.input: expected a JSON array of items")
    assert error.column is None


def test_an_invalid_json_path_is_a_planning_error() -> None:
    error = planning_error(DOCUMENT, json_path="$.items[")
    assert error.key == "map.json_path"
    assert "expected a JSONPath like '$.items[*]'" in error.message
    assert planning_error(DOCUMENT, json_path="$.a#").key == "map.json_path"


def test_a_json_path_that_fails_on_the_document_is_a_planning_error() -> None:
    # jsonpath-ng's sort extension compares the items and fails on mixed kinds.
    error = planning_error({"items": [{"x": 1}, {"x": "a"}]}, json_path="$.items[/x]")
    assert error.key == "map.json_path"
    assert "could not apply '$.items[/x]' to the input" in error.message


# filter, sort_by, distinct, offset, max_items and their order.


def test_filter_keeps_the_matching_items() -> None:
    chosen = items_of(
        DOCUMENT, json_path="$.items[*]", filter="severity == 'high' || severity == 'critical'"
    )
    assert [item["id"] for item in chosen] == ["a", "c", "d"]


def test_sort_by_orders_the_items() -> None:
    chosen = items_of(DOCUMENT, json_path="$.items[*]", sort_by="priority DESC")
    assert [item["id"] for item in chosen] == ["b", "d", "c", "a"]


def test_distinct_keeps_the_first_item_of_each_value() -> None:
    chosen = items_of(DOCUMENT, json_path="$.items[*]", distinct="severity")
    assert [item["id"] for item in chosen] == ["a", "b", "c"]
    assert items_of(DOCUMENT, json_path="$.items[*]", distinct="item.severity") == chosen


def test_distinct_counts_null_and_missing_as_one_value_and_numbers_numerically() -> None:
    items: list[Any] = [
        {"k": None, "n": 0},
        {"n": 1},
        {"k": 1, "n": 2},
        {"k": 1.0, "n": 3},
        {"k": True, "n": 4},
        {"k": "1", "n": 5},
        {"k": [1], "n": 6},
        {"k": [1.0], "n": 7},
        {"k": {"a": 1}, "n": 8},
        {"k": {"a": 1}, "n": 9},
    ]
    assert [item["n"] for item in items_of(items, distinct="k")] == [0, 2, 4, 5, 6, 8]


def test_the_steps_apply_in_order_filter_sort_distinct_offset_max_items() -> None:
    items = [
        {"id": 1, "group": "x", "score": 5},
        {"id": 2, "group": "y", "score": 9},
        {"id": 3, "group": "x", "score": 8},
        {"id": 4, "group": "z", "score": 1},
        {"id": 5, "group": "y", "score": 7},
        {"id": 6, "group": "w", "score": 6},
        {"id": 7, "group": "x", "score": 0},
    ]
    chosen = items_of(
        {"data": {"items": items}},
        json_path="$.data.items[*]",
        filter="score >= 1",
        sort_by="score DESC",
        distinct="group",
        offset=1,
        max_items=2,
    )
    # filter drops 7; sort: 2,3,5,6,1,4; distinct by group: 2(y),3(x),6(w),4(z); offset 1; max 2.
    assert [item["id"] for item in chosen] == [3, 6]


def test_offset_and_max_items_slice() -> None:
    assert items_of(list(range(10)), offset=3) == [3, 4, 5, 6, 7, 8, 9]
    assert items_of(list(range(10)), max_items=3) == [0, 1, 2]
    assert items_of(list(range(10)), offset=8, max_items=5) == [8, 9]
    assert items_of(list(range(10)), offset=10) == []
    assert items_of(list(range(10)), offset=99) == []
    assert items_of(list(range(10)), max_items=0) == []


@pytest.mark.parametrize(
    ("keys", "key", "fragment", "column"),
    [
        ({"filter": "severity =="}, "map.filter", "expected a value", 12),
        ({"filter": ""}, "map.filter", "expected an expression", 1),
        ({"sort_by": "priority SIDEWAYS"}, "map.sort_by", "found 'SIDEWAYS'", 10),
        ({"distinct": "a..b"}, "map.distinct", "expected a field name", 3),
        ({"distinct": ""}, "map.distinct", "expected a field name", 1),
        ({"offset": -1}, "map.offset", "expected a non-negative integer, found -1", None),
        ({"max_items": -2}, "map.max_items", "expected a non-negative integer, found -2", None),
    ],
)
def test_an_invalid_key_is_a_planning_error_naming_it(
    keys: dict[str, Any], key: str, fragment: str, column: int | None
) -> None:
    error = planning_error([{"a": 1}], **keys)
    assert error.key == key
    assert fragment in error.message
    assert error.column == column


def test_validation_reports_every_problem_at_once() -> None:
    problems = validate_selection(
        Selection(
            json_path="$$",
            filter="a ==",
            sort_by="b DESK",
            distinct="c.",
            offset=-1,
            max_items=-1,
        )
    )
    assert [problem.key for problem in problems] == [
        "map.json_path",
        "map.filter",
        "map.sort_by",
        "map.distinct",
        "map.offset",
        "map.max_items",
    ]
    assert validate_selection(Selection(json_path="$.items[*]", filter="a == 1")) == []


# Assignments, keys and names.


def test_assignments_are_numbered_from_zero_with_keys_and_names() -> None:
    plan = plan_work(
        DOCUMENT, Selection(json_path="$.items[*]", filter="priority > 2", sort_by="priority")
    )
    assert isinstance(plan, Success)
    assignments = plan.unwrap()
    assert [a.index for a in assignments] == [0, 1, 2]
    assert [a.item["id"] for a in assignments] == ["c", "d", "b"]
    first = assignments[0]
    digest = hashlib.sha256(canonical_json(first.item).encode()).hexdigest()
    assert first == WorkAssignment(
        0, DOCUMENT["items"][2], f"00000-{digest[:12]}", f"agent-0000-c-{digest[:8]}"
    )


def test_item_keys_are_stable_across_runs_and_depend_on_content_and_position() -> None:
    config = Selection(json_path="$.items[*]")
    again = json.loads(json.dumps(DOCUMENT))
    assert plan_work_assignments(DOCUMENT, config) == plan_work_assignments(again, config)
    assert item_key(0, {"a": 1, "b": 2}) == item_key(0, {"b": 2, "a": 1})
    assert item_key(0, {"a": 1}) != item_key(1, {"a": 1})
    assert item_key(0, {"a": 1}) != item_key(0, {"a": 2})
    assert item_key(123456, "x").startswith("123456-")


def test_equal_items_get_distinct_keys_and_names() -> None:
    assignments = plan_work_assignments([{"name": "same"}] * 3, Selection())
    assert len({a.item_key for a in assignments}) == 3
    assert len({a.worktree_name for a in assignments}) == 3


def test_canonical_json_is_compact_sorted_and_keeps_unicode() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'
    assert canonical_json(None) == "null"


def test_items_with_lone_surrogates_can_be_keyed() -> None:
    item = json.loads('{"name": "\\ud800"}')
    assert item_key(0, item).startswith("00000-")


@pytest.mark.parametrize(
    ("item", "name_middle"),
    [
        ({"name": "Fix Parser", "id": "x"}, "fix-parser"),
        ({"id": "issue-42"}, "issue-42"),
        ({"id": 42, "file": "src/main.rs"}, "src-main-rs"),
        ({"path": "../../etc/passwd"}, "etc-passwd"),
        ({"name": "-rf"}, "rf"),
        ({"name": "x.lock"}, "x-lock"),
        ({"name": "a/b"}, "a-b"),
        ({"name": "@{upstream}"}, "upstream"),
        ({"name": "Crème brûlée"}, "creme-brulee"),
        ({"name": "名前", "id": "fallback"}, "fallback"),
        ({"name": "line\nbreak\x00\x7f"}, "line-break"),
        ({"name": "..", "file": "b"}, "b"),
        ({"name": "a" * 100}, "a" * 32),
        (
            {"file": "src/cook/execution/mapreduce/agent/execution.rs"},
            "mapreduce-agent-execution-rs",
        ),
        ({"path": "x" * 40 + "/" + "y" * 31}, "y" * 31),
        ({"path": "x" * 40 + "/" + "y" * 32}, "y" * 32),
        ({"path": "x" * 40 + "/" + "y" * 33}, "y" * 32),
        ({"name": "Fix the parser so that it handles every case"}, "fix-the-parser-so-that-it"),
        ({"name": "a" * 32 + " b"}, "a" * 32),
        ({"name": "abc " + "a" * 40}, "abc"),
        ({"name": None, "title": "x"}, ""),
        ("a plain string", ""),
        ([1, 2], ""),
    ],
)
def test_worktree_names_carry_a_safe_hint(item: Any, name_middle: str) -> None:
    name = worktree_name(3, item)
    digest = item_key(3, item)[-12:-4]
    middle = f"-{name_middle}" if name_middle else ""
    assert name == f"agent-0003{middle}-{digest}"
    assert WORKTREE_NAME_PATTERN.fullmatch(name)


def test_worktree_names_stay_within_64_characters_for_huge_indexes() -> None:
    name = worktree_name(10**30, {"name": "x" * 200})
    assert len(name) <= 64
    assert WORKTREE_NAME_PATTERN.fullmatch(name)
    assert worktree_name(10**60, {"name": "x"}).startswith(f"agent-{10**60}-")


# Properties.

hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(
        ["../../etc", "-rf", "a/b", "x.lock", ".hidden", "@{", "a..b", "~^:?*[\\", " ", "HEAD", "é"]
    ),
)
json_items = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["name", "id", "file", "path", "k"]) | hostile_text,
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)

# A strict allow-list: lower-case ASCII letters, digits and single inner hyphens.
SAFE_NAME = WORKTREE_NAME_PATTERN


@given(st.lists(json_items, max_size=30))
def test_every_name_is_safe_and_unique_within_a_job(items: list[Any]) -> None:
    assignments = plan_work_assignments(items, Selection())
    names = [a.worktree_name for a in assignments]
    assert len(set(names)) == len(names)
    assert len({a.item_key for a in assignments}) == len(assignments)
    for name in names:
        assert SAFE_NAME.fullmatch(name), name
        assert len(name) <= 64 and name.isascii()
        assert "/" not in name and ".." not in name and not name.endswith(".lock")
        assert not name.startswith(("-", ".")) and "@{" not in name


@given(st.lists(json_items, max_size=30))
def test_indexes_are_zero_to_n_minus_one(items: list[Any]) -> None:
    assignments = plan_work_assignments(items, Selection())
    assert [a.index for a in assignments] == list(range(len(items)))
    assert [a.item for a in assignments] == items


@given(
    st.lists(st.integers(), max_size=30),
    st.integers(0, 40),
    st.none() | st.integers(0, 40),
)
def test_offset_and_max_items_are_a_slice(items: list[int], offset: int, limit: int | None) -> None:
    chosen = items_of(items, offset=offset, max_items=limit)
    end = None if limit is None else offset + limit
    assert chosen == items[offset:end]
    assert len(chosen) == max(0, min(len(items) - offset, len(items) if limit is None else limit))


@given(
    st.lists(st.fixed_dictionaries({"n": st.integers()}, optional={"k": json_items}), max_size=30)
)
def test_distinct_keeps_exactly_the_first_item_of_each_value(items: list[dict[str, Any]]) -> None:
    items = [{**item, "n": position} for position, item in enumerate(items)]
    chosen = items_of(items, distinct="k")
    kept = [item["n"] for item in chosen]
    assert kept == sorted(kept)
    for item in items:
        same = [other["n"] for other in items if _same_value(other.get("k"), item.get("k"))]
        assert same[0] in kept
        assert len([n for n in same if n in kept]) == 1


def _same_value(a: Any, b: Any) -> bool:
    return order_key(a) == order_key(b)


@given(
    st.lists(st.fixed_dictionaries({"v": st.integers(0, 5)}), max_size=20),
    st.integers(0, 5),
)
def test_the_filter_only_removes_items(items: list[dict[str, int]], threshold: int) -> None:
    chosen = items_of(items, filter=f"v >= {threshold}")
    assert chosen == [item for item in items if item["v"] >= threshold]


@pytest.mark.slow
def test_planning_a_hundred_thousand_items() -> None:
    items = [
        {"id": f"item-{n}", "file": f"src/m{n % 97}/f{n}.rs", "score": n % 1000, "group": n % 5000}
        for n in range(100_000)
    ]
    assignments = plan_work_assignments(
        {"items": items},
        Selection(
            json_path="$.items[*]",
            filter="score >= 10 && file matches '\\.rs$'",
            sort_by="score DESC, id",
            distinct="group",
        ),
    )
    assert len(assignments) == 5000 - 50
    assert len({a.worktree_name for a in assignments}) == len(assignments)
    assert assignments[0].item["score"] == 999
