"""An immutable list whose single-element update copies a few small nodes, not the whole list.

Mental model: the elements are cut into leaves of 32, and a tree of 32-way
nodes stands over the leaves. Reading an index walks from the root to one
leaf; :meth:`PersistentVector.set` copies only that path (four tuples of at
most 32 for 100,000 elements) and shares every other node with the
original, which stays valid and unchanged. So a job state can be updated
once per event without copying a 100,000-item table each time.

Example::

    v = PersistentVector.of(range(100))
    w = v.set(70, -1)
    assert (v[70], w[70]) == (70, -1)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, cast, final

import attrs

__all__ = ["PersistentVector"]

T = TypeVar("T")

_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1


@final
@attrs.frozen(repr=False)
class PersistentVector(Generic[T]):
    """A fixed-length immutable sequence with O(log32 n) :meth:`set`.

    ``root`` is a tuple tree: leaves (``shift == 0``) hold elements, inner
    nodes hold nodes; ``shift`` is the bit offset of the root's index digit.
    Build one with :meth:`of`. Two vectors are equal when their elements are.
    """

    length: int
    shift: int
    root: tuple[Any, ...]

    @classmethod
    def of(cls, items: Iterable[T]) -> PersistentVector[T]:
        """A vector of ``items``, in order."""
        values = list(items)
        nodes: list[tuple[Any, ...]] = _chunks(values)
        shift = 0
        while len(nodes) > 1:
            nodes = _chunks(nodes)
            shift += _BITS
        return cls(len(values), shift, nodes[0] if nodes else ())

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> T:
        position = self._position(index)
        node = self.root
        for level in range(self.shift, 0, -_BITS):
            node = node[(position >> level) & _MASK]
        return cast(T, node[position & _MASK])

    def __iter__(self) -> Iterator[T]:
        return _walk(self.root, self.shift)

    def __repr__(self) -> str:
        return f"PersistentVector.of({list(self)!r})"

    def set(self, index: int, value: T) -> PersistentVector[T]:
        """A vector equal to this one except that ``index`` holds ``value``.

        Raises ``IndexError`` for an index out of range (negative indexes
        count from the end, as for lists).
        """
        root = _set(self.root, self.shift, self._position(index), value)
        return PersistentVector(self.length, self.shift, root)

    def _position(self, index: int) -> int:
        position = index + self.length if index < 0 else index
        if not 0 <= position < self.length:
            raise IndexError(f"index {index} out of range for {self.length} elements")
        return position


def _chunks(values: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(values[start : start + _WIDTH]) for start in range(0, len(values), _WIDTH)]


def _set(node: tuple[Any, ...], level: int, position: int, value: Any) -> tuple[Any, ...]:
    slot = (position >> level) & _MASK
    child = value if level == 0 else _set(node[slot], level - _BITS, position, value)
    return (*node[:slot], child, *node[slot + 1 :])


def _walk(node: tuple[Any, ...], level: int) -> Iterator[Any]:
    if level == 0:
        yield from node
    else:
        for child in node:
            yield from _walk(child, level - _BITS)
