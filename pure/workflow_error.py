"""What is wrong with a workflow file: every problem, where it is, what was expected and found.

A :class:`Problem` names one mistake by its key path (``map.agent_template[2].timeout``),
its 1-based line and column in the source, and what was expected and found
there. :class:`WorkflowError` gathers all problems of one file: parsing never
stops at the first mistake, so a user fixes a file in one round.
"""

from __future__ import annotations

from typing import final

import attrs

__all__ = ["Location", "Problem", "WorkflowError"]


@final
@attrs.frozen
class Location:
    """A 1-based line and column in a workflow's source text."""

    line: int
    column: int


@final
@attrs.frozen
class Problem:
    """One mistake in a workflow file.

    ``message`` is the sentence a user reads (``unknown key 'max_paralel'; did
    you mean 'max_parallel'?``); ``expected`` and ``found`` say the same as
    data, for tools. A feature forkmerge deliberately leaves out has a message
    starting with ``unsupported:`` that names the feature.
    """

    path: str
    line: int
    column: int
    expected: str
    found: str
    message: str
    source: str = "<string>"

    @property
    def unsupported(self) -> bool:
        """Whether this problem is a Prodigy feature forkmerge does not support."""
        return self.message.startswith("unsupported:")

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


@final
@attrs.frozen
class WorkflowError(Exception):
    """All problems found in one workflow file, in source order.

    Raised by nothing in ``pure/``: it is the failure value of
    :func:`pure.workflow_parsing.parse_workflow` and of the resolution
    functions. It derives from ``Exception`` only so that callers that must
    raise (a command line) can.
    """

    problems: tuple[Problem, ...]

    @property
    def source(self) -> str:
        """The name of the workflow file the problems are in."""
        return self.problems[0].source if self.problems else "<string>"

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)
