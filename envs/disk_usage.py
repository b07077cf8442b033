"""How much disk a directory tree takes, the way ``du`` counts it."""

from __future__ import annotations

import os
import stat

__all__ = ["disk_usage"]


def disk_usage(path: str) -> int:
    """Bytes allocated on disk to ``path`` and everything below it, like ``du``.

    Symbolic links are counted but not followed, a file with several hard
    links once, and what cannot be read is skipped; a missing path is 0.
    """
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    total = _allocated(top)
    seen: set[tuple[int, int]] = set()
    pending = [path] if stat.S_ISDIR(top.st_mode) else []
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
            total += _allocated(info)
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
    return total


def _allocated(info: os.stat_result) -> int:
    blocks: int | None = getattr(info, "st_blocks", None)
    return info.st_size if blocks is None else blocks * 512
