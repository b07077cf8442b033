"""Turning a command's output into a captured variable, by ``capture_format``."""

from __future__ import annotations

import json
import math
from typing import Any

from returns.result import Failure, Result, Success

from pure.workflow import CaptureFormat

__all__ = ["convert_capture", "json_problem"]

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


def convert_capture(output: str, capture_format: CaptureFormat) -> Result[Any, str]:
    """Convert ``output`` to the value a ``capture_format`` asks for.

    - ``string``: the output without its trailing newlines;
    - ``json``: the output parsed as JSON;
    - ``lines``: the list of non-empty lines;
    - ``number``: an int if the stripped output is an integer, else a float;
    - ``boolean``: true/yes/1/on or false/no/0/off/empty, case-insensitive.

    Failure: a message saying what was expected and what was found.
    """
    if capture_format == "string":
        return Success(output.rstrip("\r\n"))
    if capture_format == "lines":
        return Success([line for line in output.splitlines() if line.strip()])
    text = output.strip()
    if capture_format == "json":
        try:
            return Success(json.loads(text))
        except (ValueError, RecursionError) as error:
            return Failure(f"expected JSON output, found {_excerpt(text)} ({json_problem(error)})")
    if capture_format == "number":
        try:
            return Success(int(text))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return Failure(f"expected a number, found {_excerpt(text)}")
        if not math.isfinite(number):
            return Failure(f"expected a finite number, found {_excerpt(text)}")
        return Success(number)
    lowered = text.lower()
    if lowered in _TRUE:
        return Success(True)
    if lowered in _FALSE:
        return Success(False)
    return Failure(f"expected true or false, found {_excerpt(text)}")


def json_problem(error: ValueError | RecursionError) -> str:
    """What ``json.loads`` found wrong, in a few words.

    Besides malformed text, valid JSON can be refused: an integer of more than
    4300 digits (``ValueError``) or nesting deeper than the recursion limit.
    """
    if isinstance(error, json.JSONDecodeError):
        return error.msg
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).split(";")[0]


def _excerpt(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown) if shown else "empty output"
