"""Where forkmerge puts its worktrees and branches, and how it recognises them later.

Names (rules checked here, whoever made the name):

- a job id and an agent name match ``[A-Za-z0-9][A-Za-z0-9._-]{0,99}``, hold no
  ``..`` and end neither in ``.`` nor in ``.lock``: safe as a file name and as
  a ref name component;
- the job branch is ``forkmerge/<job_id>``; an agent's branch is
  ``forkmerge-agents/<job_id>/<name>`` (not ``forkmerge/<job_id>/<name>``: git
  cannot hold a ref ``a`` and a ref ``a/b`` at once);
- the worktree id (git's name for a linked worktree, the directory under
  ``<git dir>/worktrees/``, and the worktree's directory under the state
  directory) is ``fm-<job_id>-<name>-<hash>`` (``fm-<job_id>-<hash>`` for the
  job's own worktree), the parts cut to keep it short and the hash of the
  whole making it unique in the repository whatever hyphens the parts hold.

Marker: every worktree forkmerge creates gets a ``.forkmerge-worktree.json``
in its admin directory ``<git dir>/worktrees/<id>/`` (never in the working
tree, where a commit would pick it up), holding the job id, the agent name,
the branch, the path, the base commit, the creation time and the creating
process id, and ``kept`` once the worktree was handed over to the user to
debug a failed agent (``--keep-failed``). forkmerge removes only worktrees
whose marker matches, and a cleaner can find every leftover with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, final

import attrs

__all__ = [
    "AGENT_BRANCH_PREFIX",
    "JOB_BRANCH_PREFIX",
    "MARKER_FILE",
    "WorktreeMarker",
    "agent_branch",
    "job_branch",
    "job_id_of_branch",
    "name_problem",
    "owns_branch",
    "pool_slot_name",
    "read_marker",
    "worktree_id",
    "worktree_id_problem",
    "write_marker",
]

JOB_BRANCH_PREFIX = "forkmerge/"
AGENT_BRANCH_PREFIX = "forkmerge-agents/"
MARKER_FILE = ".forkmerge-worktree.json"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_WORKTREE_ID = re.compile(r"fm-[A-Za-z0-9._-]{1,150}")
_JOB_PART = 40
_NAME_PART = 60


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` is not a safe job id or agent name (``kind`` says which), or ``None``."""
    if not _NAME.fullmatch(name):
        return (
            f"{kind} {name!r} must be 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if ".." in name or name.endswith((".", ".lock")):
        return f"{kind} {name!r} must not contain '..' nor end in '.' or '.lock'"
    return None


def worktree_id_problem(worktree_id: str) -> str | None:
    """Why ``worktree_id`` cannot be one :func:`worktree_id` made, or ``None``."""
    if not _WORKTREE_ID.fullmatch(worktree_id) or ".." in worktree_id:
        return f"{worktree_id!r} is not the name of a worktree forkmerge creates"
    return None


def job_branch(job_id: str) -> str:
    """The branch holding the job's result."""
    return f"{JOB_BRANCH_PREFIX}{job_id}"


def agent_branch(job_id: str, name: str) -> str:
    """The branch of one agent of the job."""
    return f"{AGENT_BRANCH_PREFIX}{job_id}/{name}"


def job_id_of_branch(branch: str) -> str | None:
    """The job id of a job branch, ``None`` if ``branch`` is no job branch."""
    if not branch.startswith(JOB_BRANCH_PREFIX):
        return None
    job_id = branch[len(JOB_BRANCH_PREFIX) :]
    return None if name_problem("job id", job_id) else job_id


def owns_branch(branch: str) -> bool:
    """Whether ``branch`` is in one of forkmerge's namespaces."""
    return branch.startswith((JOB_BRANCH_PREFIX, AGENT_BRANCH_PREFIX))


def pool_slot_name(slot: int) -> str:
    """The marker name of pool slot ``slot`` (``pool-3``); never an agent name work
    planning makes."""
    return f"pool-{slot}"


def worktree_id(job_id: str, name: str | None) -> str:
    """git's name for the job's worktree (``name`` ``None``) or an agent's (unique per repo)."""
    whole = job_id if name is None else f"{job_id}\0{name}"
    digest = hashlib.sha256(whole.encode()).hexdigest()[:10]
    parts = ["fm", job_id[:_JOB_PART].rstrip(".")]
    if name is not None:
        parts.append(name[:_NAME_PART].rstrip("."))
    return "-".join([*parts, digest])


@final
@attrs.frozen
class WorktreeMarker:
    """What forkmerge recorded about a worktree it created (see the module docstring)."""

    job_id: str
    name: str | None
    branch: str
    path: str
    base_commit: str
    created: float
    pid: int
    kept: bool = False  # handed over to the user to debug (--keep-failed): never swept

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, **attrs.asdict(self)}


def _marker_from_json(data: Any) -> WorktreeMarker | None:
    if not isinstance(data, dict) or data.get("version") != 1:
        return None
    values: dict[str, Any] = {}
    for field in attrs.fields(WorktreeMarker):
        if field.name in data:
            values[field.name] = data[field.name]
        elif field.default is attrs.NOTHING:  # a field markers have always had
            return None
    try:
        marker = WorktreeMarker(**values)
    except TypeError:
        return None
    text_fields = (marker.job_id, marker.branch, marker.path, marker.base_commit)
    if (
        not all(isinstance(value, str) for value in text_fields)
        or not isinstance(marker.pid, int)
        or not isinstance(marker.kept, bool)
    ):
        return None
    return marker


def read_marker(admin_dir: str) -> WorktreeMarker | None:
    """The marker in ``admin_dir``; ``None`` if there is none or it is not forkmerge's."""
    try:
        with open(os.path.join(admin_dir, MARKER_FILE), encoding="utf-8") as file:
            return _marker_from_json(json.load(file))
    except (OSError, ValueError):
        return None


def write_marker(admin_dir: str, marker: WorktreeMarker) -> None:
    """Write ``marker`` into ``admin_dir`` atomically (a crash leaves the old one or none)."""
    path = os.path.join(admin_dir, MARKER_FILE)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(marker.to_json(), file, indent=2)
        file.write("\n")
    os.replace(temporary, path)
