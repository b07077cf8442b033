"""A workflow to JSON-ready data and back, with cattrs: what the job store keeps.

``unstructure_workflow`` gives plain dicts, lists, strings and numbers (a
command carries a ``"kind"`` tag: ``shell``, ``claude`` or ``write_file``);
``structure_workflow`` rebuilds an equal :class:`~pure.workflow.Workflow`,
locations included, so a resumed job runs exactly the workflow it started
with even if the file changed since.
"""

from __future__ import annotations

from typing import Any, Final

import cattrs
from cattrs.strategies import configure_tagged_union, configure_union_passthrough

from pure.workflow import ClaudeCommand, Command, ShellCommand, Workflow, WriteFileCommand

__all__ = ["structure_workflow", "unstructure_workflow", "workflow_converter"]

_KINDS: Final = {ShellCommand: "shell", ClaudeCommand: "claude", WriteFileCommand: "write_file"}


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    configure_union_passthrough(int | float | str | bool | None, converter)
    configure_tagged_union(
        Command,
        converter,
        tag_generator=lambda cls: _KINDS[cls],
        tag_name="kind",
    )
    return converter


workflow_converter: Final = _make_converter()
"""The converter for every class of :mod:`pure.workflow`."""


def unstructure_workflow(workflow: Workflow) -> dict[str, Any]:
    """``workflow`` as JSON-ready data."""
    data: dict[str, Any] = workflow_converter.unstructure(workflow, Workflow)
    return data


def structure_workflow(data: Any) -> Workflow:
    """The workflow ``data`` came from; raises cattrs' ``ClassValidationError`` if it is not one.

    Only data written by :func:`unstructure_workflow` is expected here (the
    job store's own records), so a mismatch is a defect, not a user mistake.
    """
    return workflow_converter.structure(data, Workflow)
