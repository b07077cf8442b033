"""remove_tree: deletes forkmerge's directory trees, never what a link points to."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from envs import tree_removal
from envs.tree_removal import remove_tree


def test_removes_a_nested_tree_with_files_links_and_empty_directories(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_text("kept")
    top = tmp_path / "top"
    (top / "a" / "b" / "empty").mkdir(parents=True)
    (top / "a" / "b" / "f.txt").write_text("f")
    (top / "g.txt").write_text("g")
    os.symlink(outside, top / "a" / "dir-link")
    os.symlink(outside / "kept.txt", top / "a" / "b" / "file-link")
    os.symlink(tmp_path / "missing", top / "dangling")

    remove_tree(str(top))

    assert not os.path.lexists(top)
    assert (outside / "kept.txt").read_text() == "kept"


def test_removes_a_tree_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    top = tmp_path / "top"
    deepest = top
    for _ in range(1_200):
        deepest = deepest / "d"
    # Built level by level with relative paths: the full path is over PATH_MAX.
    top.mkdir()
    descriptor = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1_200):
            os.mkdir("d", dir_fd=descriptor)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = child
        with open(os.open("f.txt", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=descriptor), "w") as f:
            f.write("deep")
    finally:
        os.close(descriptor)

    remove_tree(str(top))

    assert not os.path.lexists(top)


def test_a_directory_swapped_for_a_link_is_refused_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_text("kept")
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "f.txt").write_text("f")
    real_open = os.open

    def swap_before_entering(path: str, flags: int, *args: int, dir_fd: int | None = None) -> int:
        if path == "sub":  # listed as a directory; a link by the time it is entered
            shutil.rmtree(top / "sub")
            os.symlink(outside, top / "sub")
        return real_open(path, flags, *args, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", swap_before_entering)
    with pytest.raises(OSError):
        remove_tree(str(top))

    assert (outside / "kept.txt").read_text() == "kept"


def test_read_only_trees_are_made_removable(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f.txt").write_text("f")
    os.symlink(tmp_path, top / "a" / "link")
    for directory in (top / "a" / "b", top / "a", top):
        os.chmod(directory, stat.S_IRUSR | stat.S_IXUSR)

    tree_removal._make_tree_writable(str(top))

    for directory in (top, top / "a", top / "a" / "b"):
        assert stat.S_IMODE(os.stat(directory).st_mode) & stat.S_IRWXU == stat.S_IRWXU
    shutil.rmtree(top)


def test_retries_after_making_the_tree_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Running as root, permissions never stop a deletion: simulate the first refusal.
    top = tmp_path / "top"
    (top / "a").mkdir(parents=True)
    (top / "a" / "f.txt").write_text("f")
    os.chmod(top / "a", stat.S_IRUSR | stat.S_IXUSR)
    real_unlink = os.unlink
    calls: list[str] = []

    def refuse_once(path: str, *, dir_fd: int | None = None) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise PermissionError(13, "Permission denied", path)
        real_unlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", refuse_once)
    remove_tree(str(top))

    assert calls[0] == "f.txt"
    assert not top.exists()


def test_a_file_or_link_in_place_of_a_directory_is_removed_alone(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "kept.txt").write_text("kept")
    os.symlink(target, tmp_path / "link")
    (tmp_path / "file").write_text("x")

    remove_tree(str(tmp_path / "link"))
    remove_tree(str(tmp_path / "file"))

    assert (target / "kept.txt").read_text() == "kept"
    assert sorted(os.listdir(tmp_path)) == ["target"]
