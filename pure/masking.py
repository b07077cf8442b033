"""Masking secret values in text that leaves the process: outputs, events, errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "mask", "mask_value"]

MASK = "***"


def _ordered(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret containing another is masked whole.
    return sorted({secret for secret in secrets if secret}, key=len, reverse=True)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every non-empty secret replaced by ``***``."""
    for secret in _ordered(secrets):
        text = text.replace(secret, MASK)
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
