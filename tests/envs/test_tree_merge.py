"""disjoint_merge gives libgit2's merged tree whenever it gives one; unique_merge_base."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping

import pygit2
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pygit2.enums import FileMode

from envs.tree_merge import disjoint_merge, unique_merge_base

_REPO = pygit2.init_repository(tempfile.mkdtemp(prefix="forkmerge-tree-merge-"), bare=True)
_SIGNATURE = pygit2.Signature("t", "t@example.com", 0, 0)

File = tuple[str, FileMode]  # content and mode
Files = Mapping[str, File]

_PATHS = ["x", "y", "a", "a/x", "a/y", "a/c/x", "a/c/y", "b/x", "b/c", "b/c/z", "d/e/f/g"]
_CONTENTS = ["one\n", "two\n", "three\n", "one\ntwo\nthree\n"]
_MODES = [FileMode.BLOB, FileMode.BLOB_EXECUTABLE]


def _valid(files: Files) -> bool:
    """No path is both a file and a directory."""
    return not any(other.startswith(path + "/") for path in files for other in files)


def _tree(files: Files) -> pygit2.Oid:
    index = pygit2.Index()
    for path, (content, mode) in files.items():
        index.add(pygit2.IndexEntry(path, _REPO.create_blob(content.encode()), mode))
    return index.write_tree(_REPO)


def _libgit2_merge(base: pygit2.Oid, ours: pygit2.Oid, theirs: pygit2.Oid) -> pygit2.Oid | None:
    index = _REPO.merge_trees(base, ours, theirs)
    if index.conflicts is not None:
        return None
    return index.write_tree(_REPO)


_file = st.tuples(st.sampled_from(_CONTENTS), st.sampled_from(_MODES))
_files = st.dictionaries(st.sampled_from(_PATHS), _file, max_size=8)
_changes = st.dictionaries(st.sampled_from(_PATHS), st.none() | _file, max_size=4)


def _apply(files: Files, changes: Mapping[str, File | None]) -> dict[str, File]:
    result = dict(files)
    for path, change in changes.items():
        if change is None:
            result.pop(path, None)
        else:
            result[path] = change
    return result


@settings(max_examples=500, deadline=None)
@given(base=_files, our_changes=_changes, their_changes=_changes)
def test_a_disjoint_merge_is_the_tree_libgit2_merges(
    base: Files, our_changes: Files, their_changes: Files
) -> None:
    ours, theirs = _apply(base, our_changes), _apply(base, their_changes)
    assume(_valid(base) and _valid(ours) and _valid(theirs))
    trees = _tree(base), _tree(ours), _tree(theirs)

    fast = disjoint_merge(_REPO, *trees)

    if fast is not None:
        assert fast == _libgit2_merge(*trees)


@settings(max_examples=200, deadline=None)
@given(base=_files, our_changes=_changes, their_changes=_changes)
def test_changes_to_different_paths_always_merge_fast(
    base: Files, our_changes: Files, their_changes: Files
) -> None:
    # Paths no other change lies on, above or below: nothing for libgit2 to decide.
    assume(
        not any(
            ours == theirs or ours.startswith(theirs + "/") or theirs.startswith(ours + "/")
            for ours in our_changes
            for theirs in their_changes
        )
    )
    ours, theirs = _apply(base, our_changes), _apply(base, their_changes)
    assume(_valid(base) and _valid(ours) and _valid(theirs))
    assume(_valid(_apply(ours, their_changes)))

    fast = disjoint_merge(_REPO, _tree(base), _tree(ours), _tree(theirs))

    assert fast == _tree(_apply(ours, their_changes))


def test_a_directory_emptied_by_one_side_disappears() -> None:
    base = {"keep": ("k\n", FileMode.BLOB), "dir/only": ("o\n", FileMode.BLOB)}
    ours = {**base, "new": ("n\n", FileMode.BLOB)}
    theirs = {"keep": base["keep"]}

    merged = disjoint_merge(_REPO, _tree(base), _tree(ours), _tree(theirs))

    assert merged == _tree({"keep": base["keep"], "new": ours["new"]})


def test_everything_deleted_gives_the_empty_tree() -> None:
    base = {"a/x": ("x\n", FileMode.BLOB)}
    merged = disjoint_merge(_REPO, _tree(base), _tree(base), _tree({}))
    assert merged is not None
    assert len(_REPO[merged].peel(pygit2.Tree)) == 0


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({"x": ("two\n", FileMode.BLOB)}, {"x": ("three\n", FileMode.BLOB)}),  # same file
        ({"x": ("one\n", FileMode.BLOB_EXECUTABLE)}, {"x": ("two\n", FileMode.BLOB)}),  # mode
        ({}, {"x": ("two\n", FileMode.BLOB)}),  # deleted against modified
        ({"x/y": ("one\n", FileMode.BLOB)}, {"x": ("two\n", FileMode.BLOB)}),  # file vs dir
    ],
)
def test_a_path_both_sides_changed_is_left_to_libgit2(ours: Files, theirs: Files) -> None:
    base = {"x": ("one\n", FileMode.BLOB)}
    assert disjoint_merge(_REPO, _tree(base), _tree(ours), _tree(theirs)) is None


def test_a_name_that_is_not_utf8_is_left_to_libgit2() -> None:
    blob = _REPO.create_blob(b"x")
    odd = pygit2.Index()
    odd.add(pygit2.IndexEntry("ok", blob, FileMode.BLOB))
    base = odd.write_tree(_REPO)
    # The index API takes str only: write the odd name with the raw tree format.
    raw = b"100644 caf\xe9\x00" + blob.raw + b"100644 ok\x00" + blob.raw
    ours = _REPO.odb.write(pygit2.enums.ObjectType.TREE, raw)
    theirs = _tree({"ok": ("x", FileMode.BLOB), "new": ("n\n", FileMode.BLOB)})
    assert disjoint_merge(_REPO, base, ours, theirs) is None


def _commit(tree_files: Files, parents: list[pygit2.Oid]) -> pygit2.Oid:
    return _REPO.create_commit(None, _SIGNATURE, _SIGNATURE, "c", _tree(tree_files), parents)


def test_the_merge_base_of_a_forked_branch_is_its_fork_point() -> None:
    root = _commit({"x": ("one\n", FileMode.BLOB)}, [])
    job = _commit({"x": ("two\n", FileMode.BLOB)}, [root])
    agent = _commit({"x": ("one\n", FileMode.BLOB), "y": ("y\n", FileMode.BLOB)}, [root])
    assert unique_merge_base(_REPO, job, agent) == root


def test_a_criss_cross_history_has_no_unique_merge_base() -> None:
    root = _commit({"x": ("one\n", FileMode.BLOB)}, [])
    left = _commit({"x": ("one\n", FileMode.BLOB), "l": ("l\n", FileMode.BLOB)}, [root])
    right = _commit({"x": ("one\n", FileMode.BLOB), "r": ("r\n", FileMode.BLOB)}, [root])
    left_merged = _commit({"x": ("two\n", FileMode.BLOB)}, [left, right])
    right_merged = _commit({"x": ("three\n", FileMode.BLOB)}, [right, left])
    assert unique_merge_base(_REPO, left_merged, right_merged) is None


def test_unrelated_histories_have_no_merge_base() -> None:
    one = _commit({"x": ("one\n", FileMode.BLOB)}, [])
    other = _commit({"y": ("two\n", FileMode.BLOB)}, [])
    assert unique_merge_base(_REPO, one, other) is None
