"""``setup.capture_outputs``: turning a setup step's output into a variable."""

from __future__ import annotations

import json
import re
from typing import Any

from returns.result import Failure, Result, Success

from pure.capture import json_problem
from pure.work_planning import PlanningError, json_path_values
from pure.workflow import SetupCapture

__all__ = ["extract_setup_capture"]


def _source_text(capture: SetupCapture, stdout: str, stderr: str) -> str:
    if capture.source == "stdout":
        return stdout
    if capture.source == "stderr":
        return stderr
    if capture.source == "both":
        return f"{stdout}\n{stderr}" if stderr else stdout
    return stdout + stderr


def _shape(text: str, capture: SetupCapture) -> Any:
    lines = text.splitlines()
    if capture.multiline == "join":
        return " ".join(line.strip() for line in lines if line.strip())
    if capture.multiline == "first_line":
        return lines[0] if lines else ""
    if capture.multiline == "last_line":
        return lines[-1] if lines else ""
    if capture.multiline == "array":
        return lines
    return text.rstrip("\r\n")


def _extract(capture: SetupCapture, text: str) -> Result[Any, str]:
    if capture.pattern is not None:
        match = re.search(capture.pattern, text, re.MULTILINE)
        if match is None:
            return Failure(f"pattern {capture.pattern!r} does not match the output")
        found: str | None = match.group(1) if match.groups() else match.group(0)
        if found is None:  # an optional first group that took no part in the match
            return Failure(f"pattern {capture.pattern!r} matches without its first group")
        text = found
    if capture.json_path is not None:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as error:
            return Failure(f"output is not JSON ({json_problem(error)}), so json_path cannot apply")
        try:
            matches = json_path_values(document, capture.json_path, key="json_path")
        except PlanningError as error:
            return Failure(str(error))
        if not matches:
            return Failure(f"json_path {capture.json_path!r} selects nothing")
        return Success(matches[0] if len(matches) == 1 else matches)
    return Success(_shape(text, capture))


def extract_setup_capture(capture: SetupCapture, stdout: str, stderr: str) -> Result[Any, str]:
    """The variable's value: source stream, then ``pattern``, ``json_path``, ``multiline``.

    Output beyond ``max_size`` characters is cut first. When extraction
    fails, ``default`` is the value if set; otherwise the failure says why.
    """
    text = _source_text(capture, stdout, stderr)[: capture.max_size]
    extracted = _extract(capture, text)
    if isinstance(extracted, Failure) and capture.default is not None:
        return Success(capture.default)
    return extracted
