"""Reaching a file by a relative path under a root directory without ever leaving it.

Paths that reach the file system from workflow data (``write_file`` steps,
item-derived names) go through :func:`join_inside`: it refuses absolute paths,
``..`` that climbs out of the root, symlinks (anywhere on the way) that lead out
of it, and the worktree's own ``.git``. The answer is the path with every
existing symlink resolved, so the caller opens exactly what was checked.
:func:`write_inside` and :func:`read_inside` do so, opening with ``O_NOFOLLOW``
so that a symlink swapped in after the check is refused rather than followed.
"""

from __future__ import annotations

import os
from typing import final

import attrs
from returns.result import Failure, Result, Success

__all__ = ["PathError", "join_inside", "read_inside", "write_inside"]


@final
@attrs.frozen
class PathError:
    """``path`` cannot be used under the root: ``reason`` says why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path!r}: {self.reason}"


def _is_within(root: str, candidate: str) -> bool:
    return candidate == root or candidate.startswith(root.rstrip(os.sep) + os.sep)


def _names_git_dir(parts: list[str]) -> bool:
    return any(part.lower() == ".git" for part in parts)


def join_inside(root: str, relative: str) -> Result[str, PathError]:
    """The real path of ``relative`` under ``root``, or why it would leave ``root``.

    ``relative`` must name something strictly below ``root`` (not the root
    itself). ``a/../b`` is fine, ``../b`` is not; a component named ``.git``
    (in any case) is refused because it is git's link to the repository. The
    file itself need not exist; the check resolves the symlinks that do exist.
    """
    if relative == "":
        return Failure(PathError(relative, "expected a relative path, found an empty string"))
    if "\0" in relative:
        return Failure(PathError(relative, "a path cannot contain a NUL character"))
    if os.path.isabs(relative):
        return Failure(PathError(relative, "expected a relative path, found an absolute one"))
    normal = os.path.normpath(relative)
    parts = normal.split(os.sep)
    if parts[0] == os.pardir:
        return Failure(PathError(relative, "'..' leads outside the directory"))
    if normal == os.curdir:
        return Failure(PathError(relative, "expected a path below the directory, found itself"))
    if _names_git_dir(parts):
        return Failure(PathError(relative, "paths inside '.git' are git's own"))
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, normal))
    if not _is_within(real_root, real):
        return Failure(PathError(relative, "a symlink on the way leads outside the directory"))
    if real == real_root:
        return Failure(PathError(relative, "a symlink on the way leads back to the directory"))
    if _names_git_dir(os.path.relpath(real, real_root).split(os.sep)):
        return Failure(PathError(relative, "a symlink on the way leads into '.git'"))
    return Success(real)


def write_inside(
    root: str, relative: str, content: bytes, *, create_dirs: bool, mode: int = 0o644
) -> Result[None, PathError]:
    """Write ``content`` to ``relative`` under ``root`` (see :func:`join_inside`).

    Missing parent directories are created only with ``create_dirs``; other
    I/O errors (a directory in the way, a full disk) raise ``OSError``.
    """
    joined = join_inside(root, relative)
    if isinstance(joined, Failure):
        return joined
    path = joined.unwrap()
    parent = os.path.dirname(path)
    if create_dirs:
        os.makedirs(parent, exist_ok=True)
    elif not os.path.isdir(parent):
        return Failure(PathError(relative, f"the directory {parent} does not exist"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(path, flags, 0o666), "wb") as file:
        file.write(content)
        os.fchmod(file.fileno(), mode)
    return Success(None)


def read_inside(root: str, relative: str) -> Result[bytes, PathError]:
    """The content of ``relative`` under ``root``; I/O errors (no such file) raise ``OSError``."""
    joined = join_inside(root, relative)
    if isinstance(joined, Failure):
        return joined
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(joined.unwrap(), flags), "rb") as file:
        return Success(file.read())
