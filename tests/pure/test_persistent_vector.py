"""The persistent vector behaves like an immutable list and shares structure on update."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pure.persistent_vector import PersistentVector


def test_reads_like_a_list() -> None:
    for size in (0, 1, 31, 32, 33, 1024, 1025, 40_000):
        values = list(range(size))
        vector = PersistentVector.of(values)
        assert len(vector) == size
        assert list(vector) == values
        if size:
            assert vector[0] == 0
            assert vector[size - 1] == vector[-1] == size - 1


def test_out_of_range_indexes() -> None:
    vector = PersistentVector.of("abc")
    for index in (3, -4, 100):
        with pytest.raises(IndexError, match=f"index {index} out of range for 3 elements"):
            vector[index]
        with pytest.raises(IndexError):
            vector.set(index, "x")
    with pytest.raises(IndexError):
        PersistentVector.of([])[0]


def test_set_leaves_the_original_unchanged_and_shares_the_rest() -> None:
    original = PersistentVector.of(range(2000))
    changed = original.set(1500, -1)
    assert original[1500] == 1500
    assert changed[1500] == -1
    assert list(changed) == [*range(1500), -1, *range(1501, 2000)]
    # one path is copied; sibling subtrees are the very same objects
    assert changed.root is not original.root
    assert changed.root[0] is original.root[0]
    assert changed.set(-1, -2)[1999] == -2


def test_equality_and_repr() -> None:
    assert PersistentVector.of([1, 2]) == PersistentVector.of((1, 2))
    assert PersistentVector.of([1, 2]) != PersistentVector.of([1, 3])
    assert PersistentVector.of([1, 2]).set(1, 3) == PersistentVector.of([1, 3])
    assert repr(PersistentVector.of(["a"])) == "PersistentVector.of(['a'])"


@given(
    st.lists(st.integers(), max_size=300),
    st.lists(st.tuples(st.integers(min_value=0), st.integers()), max_size=40),
)
def test_matches_a_list_under_any_updates(
    values: list[int], updates: list[tuple[int, int]]
) -> None:
    model = list(values)
    vector = PersistentVector.of(values)
    for index, value in updates:
        if not model:
            break
        position = index % len(model)
        model[position] = value
        vector = vector.set(position, value)
    assert list(vector) == model
    assert [vector[i] for i in range(len(model))] == model
