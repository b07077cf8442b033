"""Deleting a directory tree forkmerge made (a worktree, its metadata), quickly and safely.

:func:`remove_tree` walks the tree through directory file descriptors opened with
``O_NOFOLLOW``, as ``shutil.rmtree`` does on Linux, so a directory swapped for a
symbolic link while the walk runs makes it fail instead of deleting what the link
points to; it skips ``shutil``'s extra ``stat`` calls per entry, which makes it about
a quarter faster on a 5,000-file worktree (measured in docs/benchmarks.md).
Read-only directories (a tool's cache, ``chmod -R a-w``) are made writable and the
deletion is retried.
"""

from __future__ import annotations

import os
import shutil
import stat

__all__ = ["remove_tree"]

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str) -> None:
    """Delete ``path`` and everything below it (a file or link at ``path``: just that).

    Symbolic links are deleted, never followed. Raises ``OSError`` when something
    cannot be deleted (what could be deleted is gone).
    """
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    try:
        _remove_directory(path)
    except PermissionError:
        _make_tree_writable(path)
        shutil.rmtree(path)


def _remove_directory(path: str) -> None:
    """Delete the directory ``path`` depth first, without recursion (any depth works
    while file descriptors last: one per level)."""
    open_levels: list[tuple[int, list[tuple[str, bool]]]] = []
    names: list[str] = []  # names[i]: the name of level i + 1 inside level i
    try:
        _enter(open_levels, os.open(path, _DIRECTORY_FLAGS))
        while open_levels:
            directory, entries = open_levels[-1]
            if entries:
                name, is_directory = entries.pop()
                if is_directory:
                    _enter(open_levels, os.open(name, _DIRECTORY_FLAGS, dir_fd=directory))
                    names.append(name)
                else:
                    os.unlink(name, dir_fd=directory)
                continue
            os.close(open_levels.pop()[0])
            if open_levels:
                os.rmdir(names.pop(), dir_fd=open_levels[-1][0])
    finally:
        for directory, _entries in open_levels:
            os.close(directory)
    os.rmdir(path)


def _enter(open_levels: list[tuple[int, list[tuple[str, bool]]]], directory: int) -> None:
    """List the open directory ``directory`` and push it (closing it if listing fails)."""
    try:
        with os.scandir(directory) as listing:
            entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
    except BaseException:
        os.close(directory)
        raise
    open_levels.append((directory, entries))


def _make_tree_writable(path: str) -> None:
    # Top-down: each directory is made enterable before os.walk lists it.
    os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)
    for directory, subdirectories, _files in os.walk(path):
        for subdirectory in subdirectories:
            child = os.path.join(directory, subdirectory)
            if not os.path.islink(child):
                os.chmod(child, os.stat(child).st_mode | stat.S_IRWXU)
