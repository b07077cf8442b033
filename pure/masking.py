"""Masking secret values in text that leaves the process: outputs, events, errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "mask", "mask_value"]

MASK = "***"


def _ordered(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret containing another is masked whole; then by text, so the
    # result does not depend on set order. A secret that is part of the mask itself ("",
    # "*", "**", "***") cannot be hidden by it: it is left alone.
    kept = {secret for secret in secrets if secret not in MASK}
    return sorted(kept, key=lambda secret: (-len(secret), secret))


def _replace_all(text: str, ordered: list[str]) -> str:
    for secret in ordered:
        text = text.replace(secret, MASK)
    return text


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every secret replaced by ``***``.

    No secret's text is left in the result, even one that the masks themselves
    re-form (``pa**`` in ``papa**`` becomes ``pa***`` after one pass), except a
    secret made of one to three ``*``, which the mask cannot hide.
    """
    ordered = _ordered(secrets)
    text = _replace_all(text, ordered)
    # Only a secret containing "*" can reappear: a new occurrence must overlap a mask. Each
    # pass removes a non-"*" character or shortens the text, so the loop ends.
    starred = [secret for secret in ordered if "*" in secret]
    while any(secret in text for secret in starred):
        text = _replace_all(text, starred)
    return text


def mask_value(value: Any, secrets: Iterable[str]) -> Any:
    """Mask secrets in every string inside a JSON-like value (keys included)."""
    ordered = _ordered(secrets)
    if not ordered:
        return value

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return mask(node, ordered)
        if isinstance(node, dict):
            return {walk(key): walk(item) for key, item in node.items()}
        if isinstance(node, list | tuple):
            return [walk(item) for item in node]
        return node

    return walk(value)
