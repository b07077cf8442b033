"""A throwaway git repository for the demo: files committed on ``main``."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pygit2

__all__ = ["create_repository"]


def create_repository(path: str, files: Mapping[str, str]) -> str:
    """Create a repository at ``path`` holding ``files`` in one commit on ``main``.

    Returns the repository's working directory. Raises ``OSError`` or
    ``pygit2.GitError`` if the directory cannot be created.
    """
    repo = pygit2.init_repository(path, initial_head="main")
    for relative, text in files.items():
        target = os.path.join(path, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as file:
            file.write(text)
    repo.config["user.name"] = "forkmerge demo"
    repo.config["user.email"] = "demo@forkmerge.invalid"
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    signature = pygit2.Signature("forkmerge demo", "demo@forkmerge.invalid")
    repo.create_commit("HEAD", signature, signature, "Demo repository", tree, [])
    return str(repo.workdir)
