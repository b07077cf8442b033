"""Filling a new worktree with a commit's files: git's checkout, without libgit2's
per-file attribute lookups when no attribute can apply.

libgit2 looks up the ``.gitattributes`` that apply to every file it writes, to know
which filters (end-of-line conversion, ``ident``, filter drivers) to run; each lookup
``realpath()``s the file's directory. On a 5,000-file tree that is 80,000 failing
``readlink`` calls and makes libgit2's checkout about 3x slower than git's (see
docs/benchmarks.md). When no attribute source exists at all (no ``.gitattributes`` in
the tree, no ``info/attributes``, no ``core.attributesFile``, no global or system
attributes file) and ``core.autocrlf`` is off, no filter can apply and the files are
exactly the blobs: the checkout then runs with libgit2's ``disable_filters`` option,
which pygit2 does not expose, through pygit2's own cffi binding of
``git_checkout_tree``. Whenever a filter might apply, or that binding is not there,
the ordinary (filtered) checkout runs: the result is the same files either way.

A new worktree is added on a branch pointing at :func:`placeholder_commit` (a
commit of the empty tree, so libgit2's own checkout during ``add_worktree`` writes
nothing), then filled by :func:`fill_worktree`. All functions here block: call them
in a worker thread.
"""

from __future__ import annotations

import os
import threading
from typing import Any, final

import pygit2
from pygit2.enums import CheckoutStrategy, ConfigLevel, RepositoryOpenFlag

__all__ = ["CheckoutFilters", "fast_checkout_available", "fill_worktree", "placeholder_commit"]

_PLACEHOLDER_SIGNATURE = pygit2.Signature("forkmerge", "forkmerge@localhost", 0, 0)
_PLACEHOLDER_MESSAGE = "forkmerge: empty placeholder while a worktree is checked out\n"
_ATTRIBUTES_FILE = ".gitattributes"
_CACHE_LIMIT = 100_000


def placeholder_commit(repo: pygit2.Repository) -> pygit2.Oid:
    """A root commit of the empty tree, always the same one (written if missing)."""
    empty_tree = repo.TreeBuilder().write()
    signature = _PLACEHOLDER_SIGNATURE
    return repo.create_commit(None, signature, signature, _PLACEHOLDER_MESSAGE, empty_tree, [])


def _binding() -> tuple[Any, Any, Any] | None:
    """pygit2's cffi ``ffi``, ``C`` and ``check_error``, or ``None`` if this pygit2 lacks them."""
    try:
        from pygit2.errors import check_error
        from pygit2.ffi import C, ffi
    except ImportError:  # pragma: no cover - only with a pygit2 laid out differently
        return None
    options = ffi.new("git_checkout_options *")
    if not hasattr(options, "disable_filters") or not hasattr(C, "git_checkout_tree"):
        return None  # pragma: no cover
    return ffi, C, check_error


_BINDING = _binding()


def fast_checkout_available() -> bool:
    """Whether this pygit2 lets :func:`fill_worktree` turn libgit2's filters off."""
    return _BINDING is not None


@final
class CheckoutFilters:
    """Decides whether a checkout filter might apply to a tree of one repository.

    Remembers, for every tree it has looked at, whether a ``.gitattributes`` is
    anywhere below it: a merge changes only the trees on the paths it touched, so
    checking the next job-branch head looks at a handful of trees. Safe to share
    between worker threads (a race only repeats a lookup).
    """

    def __init__(self) -> None:
        self._has_attributes: dict[pygit2.Oid, bool] = {}
        self._lock = threading.Lock()

    def may_apply(self, repo: pygit2.Repository, tree: pygit2.Tree) -> bool:
        """Whether checking ``tree`` out in ``repo`` might run a filter on some file."""
        return _configured_filters(repo) or self.tree_has_attributes(repo, tree.id)

    def tree_has_attributes(self, repo: pygit2.Repository, tree_id: pygit2.Oid) -> bool:
        """Whether a ``.gitattributes`` is anywhere in tree ``tree_id``; trees seen before
        are not read again."""
        known = self._has_attributes.get(tree_id)
        if known is not None:
            return known
        found = any(
            entry.name == _ATTRIBUTES_FILE
            or (
                entry.filemode == pygit2.enums.FileMode.TREE
                and self.tree_has_attributes(repo, entry.id)
            )
            for entry in repo[tree_id].peel(pygit2.Tree)
        )
        with self._lock:
            if len(self._has_attributes) >= _CACHE_LIMIT:
                self._has_attributes.clear()
            self._has_attributes[tree_id] = found
        return found


def _configured_filters(repo: pygit2.Repository) -> bool:
    """Whether configuration or an attributes file outside the tree might ask for a filter."""
    config = repo.config
    if "core.autocrlf" in config and str(config["core.autocrlf"]).lower() not in (
        "false",
        "no",
        "off",
        "0",
        "",
    ):
        return True
    if "core.attributesFile" in config:
        return True
    candidates = [os.path.join(_common_dir(repo), "info", "attributes")]
    search_path = pygit2.settings.search_path
    for level, name in ((ConfigLevel.XDG, "attributes"), (ConfigLevel.SYSTEM, "gitattributes")):
        candidates.extend(
            os.path.join(directory, name)
            for directory in str(search_path[level]).split(os.pathsep)
            if directory
        )
    return any(os.path.exists(candidate) for candidate in candidates)


def _common_dir(repo: pygit2.Repository) -> str:
    commondir = os.path.join(repo.path, "commondir")
    if not os.path.isfile(commondir):
        return str(repo.path)
    with open(commondir, encoding="utf-8") as file:
        return os.path.normpath(os.path.join(repo.path, file.read().strip()))


def fill_worktree(path: str, commit: pygit2.Oid, filters: CheckoutFilters) -> None:
    """Write ``commit``'s tree into the new, empty worktree at ``path`` and its index.

    HEAD is not moved. Files are written as ``git checkout`` would, filters
    included whenever one might apply. Raises ``pygit2.GitError`` or ``OSError``
    when the checkout fails (some files may have been written).
    """
    repo = pygit2.Repository(path, RepositoryOpenFlag.NO_SEARCH)
    tree = repo[commit].peel(pygit2.Tree)
    if _BINDING is None or filters.may_apply(repo, tree):
        repo.checkout_tree(tree, strategy=CheckoutStrategy.FORCE)  # type: ignore[no-untyped-call]
    else:
        _checkout_unfiltered(repo, tree, _BINDING)
    # The index gets its tree cache (the checkout leaves it empty; stat data is kept), so
    # the agent's commit rewrites only the trees its changes touch.
    index = repo.index
    index.read_tree(tree)
    index.write()


def _checkout_unfiltered(
    repo: pygit2.Repository, tree: pygit2.Tree, binding: tuple[Any, Any, Any]
) -> None:
    ffi, lib, check_error = binding
    options = ffi.new("git_checkout_options *")
    check_error(lib.git_checkout_options_init(options, 1))
    options.checkout_strategy = int(CheckoutStrategy.FORCE)
    options.disable_filters = 1
    # As pygit2's Repository.checkout_tree passes a tree to libgit2.
    pointer = ffi.new("git_object **")
    ffi.buffer(pointer)[:] = tree._pointer[:]
    check_error(lib.git_checkout_tree(repo._repo, pointer[0], options))
