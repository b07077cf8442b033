"""Three-way merges of trees that changed disjoint paths, in time proportional to the change.

libgit2's ``merge_commits`` reads every entry of both trees into an index and writes the
result back tree by tree: on a 5,000-file tree that is about 12 ms per merge, and the
job's merges run one at a time, so on large repositories it bounds how many agents a
job can merge per second. Most agents change a few files nobody else touched; for them
the merged tree is *ours* with *theirs*' changes applied, and only the trees on the
changed paths need writing.

:func:`disjoint_merge` computes that tree, descending only into subtrees that differ
(identical object ids are skipped whole). It gives up (``None``), and the caller falls
back to libgit2's full merge, as soon as both sides changed the same file path, even
alike (a side may have renamed a file the other deleted, or renamed it onto a path the
other added: libgit2's rename detection makes those conflicts), or the two commits have
more than one best common ancestor (a criss-cross, which libgit2 merges against a
virtual base). Whenever it returns a tree, it is the tree libgit2's merge would produce
(property-tested against it in tests/envs/test_tree_merge.py).

Blocking pygit2 calls: run them in a worker thread.
"""

from __future__ import annotations

from typing import TypeAlias, final

import pygit2
from pygit2.enums import FileMode

__all__ = ["disjoint_merge", "unique_merge_base"]

_Entry: TypeAlias = tuple[pygit2.Oid, int]  # object id and file mode of a tree entry


@final
class _NotDisjoint(Exception):
    """Both sides changed one path: the full merge decides."""


def unique_merge_base(
    repo: pygit2.Repository, ours: pygit2.Oid, theirs: pygit2.Oid
) -> pygit2.Oid | None:
    """The best common ancestor of two commits, or ``None`` when there is none or more
    than one (a criss-cross history).

    Every commit reachable from ``theirs`` but not from the base found is checked not
    to be an ancestor of ``ours``: such a commit would be a second common ancestor
    the base does not include. ``theirs`` should be the side with few new commits
    (an agent's branch): that is the side walked.
    """
    try:
        base = repo.merge_base(ours, theirs)
    except (KeyError, pygit2.GitError):
        return None
    if base is None:
        return None
    walker = repo.walk(theirs)
    walker.hide(base)
    for commit in walker:
        if commit.id == ours or repo.descendant_of(ours, commit.id):
            return None
    return base


def disjoint_merge(
    repo: pygit2.Repository, base: pygit2.Oid, ours: pygit2.Oid, theirs: pygit2.Oid
) -> pygit2.Oid | None:
    """The merged tree of trees ``ours`` and ``theirs`` from ``base`` (all tree ids), or
    ``None`` when some path changed on both sides (differently) and libgit2 must decide.

    New trees are written to the repository's object database.
    """
    try:
        merged = _merge(repo, base, ours, theirs)
    except _NotDisjoint:
        return None
    return merged if merged is not None else repo.TreeBuilder().write()


def _merge(
    repo: pygit2.Repository,
    base: pygit2.Oid | None,
    ours: pygit2.Oid | None,
    theirs: pygit2.Oid | None,
) -> pygit2.Oid | None:
    """Merge three trees (``None``: absent); ``None`` when the result is empty."""
    if theirs == base:
        return ours
    if ours == base:
        return theirs
    base_entries, our_entries, their_entries = (
        _entries(repo, tree) for tree in (base, ours, theirs)
    )
    builder = repo.TreeBuilder(ours) if ours is not None else repo.TreeBuilder()
    changed = False
    for name in sorted(base_entries.keys() | our_entries.keys() | their_entries.keys()):
        in_base, in_ours, in_theirs = (
            entries.get(name) for entries in (base_entries, our_entries, their_entries)
        )
        if in_theirs == in_base:
            continue  # ours stands
        if in_ours == in_base:
            result = in_theirs  # only theirs changed it
        else:  # both did, maybe alike: below a directory, they may still be disjoint
            result = _merge_subtree(repo, in_base, in_ours, in_theirs)
        if result is None:
            builder.remove(name)
        else:
            builder.insert(name, result[0], result[1])
        changed = True
    if not changed:
        return ours
    return builder.write() if len(builder) else None


def _merge_subtree(
    repo: pygit2.Repository, base: _Entry | None, ours: _Entry | None, theirs: _Entry | None
) -> _Entry | None:
    """Both sides changed this name: only directories (or absences) can merge below it.

    Files changed on both sides, even alike, are libgit2's: an addition on one side may
    be the other's rename target, a deletion on both a rename on one.
    """
    if any(entry is not None and entry[1] != FileMode.TREE for entry in (base, ours, theirs)):
        raise _NotDisjoint
    merged = _merge(repo, *(None if entry is None else entry[0] for entry in (base, ours, theirs)))
    return None if merged is None else (merged, FileMode.TREE)


def _entries(repo: pygit2.Repository, tree: pygit2.Oid | None) -> dict[str, _Entry]:
    """The entries of ``tree`` by name; a name that is not UTF-8 (which pygit2's tree
    builder cannot write) leaves the merge to libgit2."""
    if tree is None:
        return {}
    entries: dict[str, _Entry] = {}
    for entry in repo[tree].peel(pygit2.Tree):
        raw = entry.raw_name
        try:
            name = raw.decode("utf-8") if raw is not None else None
        except UnicodeDecodeError:
            name = None
        if name is None:
            raise _NotDisjoint from None
        entries[name] = (entry.id, entry.filemode)
    return entries
