"""An in-memory git repository for the mock services: immutable commits, branches, 3-way merges.

A commit is an immutable snapshot ``{path: bytes}`` with parents; a branch
names a commit. The mock worktree manager and merger share one
:class:`MockRepository`, as the real ones share a git repository. Also the
path, name and ``.gitignore`` rules the mock applies the way git and the real
services do.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, final

import attrs

__all__ = [
    "DEFAULT_FILES",
    "MOCK_REPO_PATH",
    "MockCommit",
    "MockRepository",
    "is_ignored",
    "normalize_relative_path",
    "parent_dirs",
    "three_way_merge",
    "valid_name",
]

MOCK_REPO_PATH: Final = "/mock/repo"
"""The user's repository (its main working tree) in the mock world."""

DEFAULT_FILES: Final[Mapping[str, bytes]] = MappingProxyType({"README.md": b"# mock repository\n"})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _freeze(files: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(sorted(files.items())))


@attrs.frozen
class MockCommit:
    """An immutable snapshot of the repository's files, with its parents.

    ``sequence`` orders commits by creation (the mock's commit timestamp);
    ``id`` is a 40-hex digest of sequence, parents, message and files, so it
    is deterministic for a deterministic test and unique within a repository.
    """

    id: str
    parents: tuple[str, ...]
    files: Mapping[str, bytes] = attrs.field(converter=_freeze)
    message: str
    sequence: int


def valid_name(name: str) -> bool:
    """Whether ``name`` is safe as a worktree directory and branch component.

    The real worktree manager's allow-list: a letter or digit, then up to 99
    letters, digits, ``.``, ``_`` or ``-``; no ``..``; no ``.lock`` suffix.
    """
    return bool(_NAME.fullmatch(name)) and ".." not in name and not name.endswith(".lock")


def normalize_relative_path(relative_path: str) -> str | None:
    """``relative_path`` normalized inside its root (``a/./b`` -> ``a/b``), or ``None``
    when it is empty, absolute, contains NUL or leads out of the root with ``..``."""
    if not relative_path or "\0" in relative_path or relative_path.startswith("/"):
        return None
    normal = posixpath.normpath(relative_path)
    if normal in (".", "..") or normal.startswith("../"):
        return None
    return normal


def parent_dirs(path: str) -> list[str]:
    """Every directory above ``path``, outermost first: ``a/b/c`` -> ``["a", "a/b"]``."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: index + 1]) for index in range(len(parts))]


@final
class MockRepository:
    """Commits and branches in memory; ``main`` starts with one commit holding ``files``.

    ``path`` is where the user's repository "is" (a valid ``cwd`` for
    commands); ``head`` is the user's checked-out branch, which forkmerge
    never moves.
    """

    def __init__(
        self,
        files: Mapping[str, bytes] | None = None,
        *,
        branch: str = "main",
        path: str = MOCK_REPO_PATH,
    ) -> None:
        self.path = path
        self.head = branch
        self.commits: dict[str, MockCommit] = {}
        self.branches: dict[str, str] = {}
        initial = self.commit(DEFAULT_FILES if files is None else files, (), "initial commit")
        self.branches[branch] = initial

    def commit(self, files: Mapping[str, bytes], parents: Iterable[str], message: str) -> str:
        """Store a new commit and return its id (no branch moves)."""
        parents = tuple(parents)
        sequence = len(self.commits) + 1
        digest = hashlib.sha1(f"{sequence}\0{parents}\0{message}\0".encode())
        for path, content in sorted(files.items()):
            digest.update(path.encode() + b"\0" + hashlib.sha1(content).digest())
        commit_id = digest.hexdigest()
        self.commits[commit_id] = MockCommit(commit_id, parents, files, message, sequence)
        return commit_id

    def resolve(self, ref: str) -> str | None:
        """The commit a branch name or commit id names, or ``None``."""
        if ref in self.branches:
            return self.branches[ref]
        return ref if ref in self.commits else None

    def files_at(self, commit_id: str) -> Mapping[str, bytes]:
        return self.commits[commit_id].files

    def ancestors(self, commit_id: str) -> set[str]:
        """``commit_id`` and every commit reachable from it."""
        seen: set[str] = set()
        pending = [commit_id]
        while pending:
            current = pending.pop()
            if current not in seen:
                seen.add(current)
                pending.extend(self.commits[current].parents)
        return seen

    def merge_base(self, one: str, other: str) -> str | None:
        """A best common ancestor of two commits (``None`` for unrelated histories).

        When several common ancestors are best (criss-cross merges), the
        newest is used; git would merge them into a virtual base instead.
        """
        common = self.ancestors(one) & self.ancestors(other)
        if not common:
            return None
        # A best common ancestor is not an ancestor of another common ancestor.
        below: set[str] = set()
        for commit_id in common:
            below |= self.ancestors(commit_id) - {commit_id}
        best = common - below
        return max(best, key=lambda commit_id: self.commits[commit_id].sequence)

    def log(self, commit_id: str) -> list[MockCommit]:
        """Every commit reachable from ``commit_id``, newest first (like ``git log``)."""
        reachable = (self.commits[each] for each in self.ancestors(commit_id))
        return sorted(reachable, key=lambda commit: commit.sequence, reverse=True)


def three_way_merge(
    base: Mapping[str, bytes], ours: Mapping[str, bytes], theirs: Mapping[str, bytes]
) -> tuple[dict[str, bytes], list[str]]:
    """Merge two snapshots file by file against ``base``: the merged files and the conflicts.

    A file changed on one side takes that side; changed identically on both
    sides, it is kept; changed differently on both sides (including deleted
    on one and modified on the other, or added on both with different
    content) it is a conflict. Conflicts are sorted.
    """
    merged: dict[str, bytes] = {}
    conflicts: list[str] = []
    for path in sorted(set(base) | set(ours) | set(theirs)):
        original, mine, other = base.get(path), ours.get(path), theirs.get(path)
        if mine == other or original == other:
            result = mine
        elif original == mine:
            result = other
        else:
            conflicts.append(path)
            continue
        if result is not None:
            merged[path] = result
    return merged, conflicts


# --- .gitignore -----------------------------------------------------------------------------


@attrs.frozen
class _IgnoreRule:
    base: str  # the directory of the .gitignore holding it ("" for the root)
    pattern: re.Pattern[str]
    negated: bool
    dir_only: bool
    anchored: bool


def _glob_to_regex(glob: str) -> str:
    parts: list[str] = []
    index = 0
    while index < len(glob):
        if glob.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif glob.startswith("/**", index) and index + 3 == len(glob):
            parts.append("/.*")
            index += 3
        elif glob[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            parts.append("[^/]")
            index += 1
        elif glob[index] == "[" and (end := glob.find("]", index + 2)) != -1:
            body = glob[index + 1 : end]
            parts.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            index = end + 1
        elif glob[index] == "\\" and index + 1 < len(glob):
            parts.append(re.escape(glob[index + 1]))
            index += 2
        else:
            parts.append(re.escape(glob[index]))
            index += 1
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _parse_gitignore(base: str, text: str) -> tuple[_IgnoreRule, ...]:
    rules: list[_IgnoreRule] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        if line:
            pattern = re.compile(_glob_to_regex(line))
            rules.append(_IgnoreRule(base, pattern, negated, dir_only, anchored))
    return tuple(rules)


def _rules_for(files: Mapping[str, bytes]) -> list[_IgnoreRule]:
    """Every rule of every ``.gitignore``, shallow files first so deeper ones win."""
    sources = sorted(
        (path for path in files if posixpath.basename(path) == ".gitignore"),
        key=lambda path: path.count("/"),
    )
    rules: list[_IgnoreRule] = []
    for source in sources:
        text = files[source].decode("utf-8", errors="replace")
        rules.extend(_parse_gitignore(posixpath.dirname(source), text))
    return rules


def _matches(rules: list[_IgnoreRule], path: str, is_dir: bool) -> bool:
    ignored = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.base:
            if not path.startswith(rule.base + "/"):
                continue
            relative = path[len(rule.base) + 1 :]
        else:
            relative = path
        subject = relative if rule.anchored else posixpath.basename(relative)
        if rule.pattern.fullmatch(subject):
            ignored = not rule.negated
    return ignored


def is_ignored(path: str, files: Mapping[str, bytes]) -> bool:
    """Whether git would ignore the untracked ``path`` given the ``.gitignore`` files in ``files``.

    Supports what real ``.gitignore`` files use: comments, ``!`` negation,
    trailing ``/`` for directories, anchoring by a ``/``, ``*``, ``?``,
    ``[...]`` and ``**``. As in git, a file inside an ignored directory is
    ignored whatever later rules say about the file.
    """
    rules = _rules_for(files)
    if not rules:
        return False
    if any(_matches(rules, directory, True) for directory in parent_dirs(path)):
        return True
    return _matches(rules, path, False)
