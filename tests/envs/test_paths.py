"""join_inside: relative paths never lead out of their root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from envs.paths import PathError, join_inside, write_inside


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A root with a subdirectory, files, and symlinks inside, outside and back to the root."""
    base = tmp_path_factory.mktemp("paths")
    root = base / "root"
    outside = base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "file.txt").write_text("inside")
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, root / "out")
    os.symlink(outside / "secret.txt", root / "secret-link")
    os.symlink(root / "sub", root / "in")
    os.symlink("sub/../file.txt", root / "relative-link")
    os.symlink(".", root / "self")
    os.symlink(".git", root / "gitlink")
    (root / ".git").mkdir()
    yield str(root), str(outside)


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("file.txt", "file.txt"),
        ("sub/new.txt", "sub/new.txt"),
        ("sub/../file.txt", "file.txt"),
        ("./sub//deeper/x", "sub/deeper/x"),
        ("in/x.txt", "sub/x.txt"),
        ("relative-link", "file.txt"),
        ("not/yet/there.txt", "not/yet/there.txt"),
        ("dotted..name", "dotted..name"),
    ],
)
def test_paths_inside_resolve_to_their_real_location(
    tree: tuple[str, str], relative: str, expected: str
) -> None:
    root, _ = tree
    real_root = os.path.realpath(root)
    assert join_inside(root, relative) == Success(os.path.join(real_root, expected))


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../x", "'..' leads outside"),
        ("sub/../../x", "'..' leads outside"),
        ("..", "'..' leads outside"),
        (".", "itself"),
        ("sub/..", "itself"),
        ("a\0b", "NUL"),
        ("out/secret.txt", "symlink on the way leads outside"),
        ("out", "symlink on the way leads outside"),
        ("secret-link", "symlink on the way leads outside"),
        ("self", "leads back to the directory"),
        (".git/config", "git's own"),
        ("sub/.GIT/x", "git's own"),
        ("gitlink/config", "leads into '.git'"),
    ],
)
def test_paths_leaving_the_root_are_refused(
    tree: tuple[str, str], relative: str, reason: str
) -> None:
    root, _ = tree
    result = join_inside(root, relative)
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, PathError)
    assert error.path == relative
    assert reason in error.reason
    assert repr(relative) in str(error)


_PARTS = st.sampled_from(
    ["sub", "file.txt", "out", "in", "self", "secret-link", "..", ".", "", "x", "/", ".git"]
)


@given(st.lists(_PARTS, min_size=1, max_size=6))
def test_any_accepted_path_stays_strictly_inside_the_root(
    tree: tuple[str, str], parts: list[str]
) -> None:
    root, outside = tree
    relative = "/".join(parts)
    real_root = os.path.realpath(root)
    result = join_inside(root, relative)
    if isinstance(result, Success):
        path = result.unwrap()
        assert path.startswith(real_root + os.sep)
        assert os.path.realpath(path) == path
        assert not os.path.realpath(path).startswith(os.path.realpath(outside))
        assert ".git" not in Path(path).relative_to(real_root).parts
    else:
        assert result.failure().path == relative


def test_write_inside_applies_the_mode(tmp_path: Path) -> None:
    written = write_inside(str(tmp_path), "run.sh", b"#!/bin/sh\n", create_dirs=False, mode=0o755)
    assert written == Success(None)
    assert os.stat(tmp_path / "run.sh").st_mode & 0o777 == 0o755
