"""Which steps of a phase may run at the same time: a dependency graph from step footprints.

A step's *footprint* is what it reads and what it writes, as resource names
(variable names or paths):

* it **reads** every variable it references (``${name}``, ``$NAME`` in its
  command, ``write_file`` path and content, ``when``, ``env`` values and
  ``working_dir``, and those of its ``on_failure`` / ``on_success`` handlers)
  plus the paths of its ``reads:``;
* it **writes** its capture variable (and its handlers'), the paths of its
  ``writes:``, and ``.git`` when it must commit.

A step that declares neither ``reads:`` nor ``writes:`` is treated as reading
and writing everything, and so is an undeclared side of a step that declares
only the other: false dependencies only cost parallelism, missing ones would
break the workflow. Two names overlap when they are equal or one contains the
other (``metadata`` and ``metadata.commit``, ``src`` and ``src/main.rs``);
``*`` and ``?`` in a path match anything from there on.

Step *j* depends on an earlier step *i* on read-after-write (j reads what i
writes), write-after-write, or write-after-read (j writes what i reads).
:meth:`CommandGraph.parallel_batches` gives the topological layers: each step
runs in the first batch after all the steps it depends on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Literal, final

import attrs

from pure.interpolation import referenced_names
from pure.workflow import Step, WriteFileCommand

__all__ = [
    "EVERYTHING",
    "CommandGraph",
    "Dependency",
    "Footprint",
    "analyze_dependencies",
    "overlaps",
    "step_footprint",
]

EVERYTHING: Final = "*"
"""The resource name of an undeclared footprint side: it overlaps every other name."""

DependencyKind = Literal["read-after-write", "write-after-write", "write-after-read"]


@final
@attrs.frozen
class Footprint:
    """What one step reads and writes; ``None`` for a side that may touch anything."""

    reads: frozenset[str] | None
    writes: frozenset[str] | None


@final
@attrs.frozen
class Dependency:
    """Step ``after`` must wait for step ``before``, because of ``kind`` on ``resource``.

    One dependency is kept per pair of steps: the first reason found, in the
    order read-after-write, write-after-write, write-after-read.
    """

    before: int
    after: int
    kind: DependencyKind
    resource: str


@final
@attrs.frozen
class CommandGraph:
    """The steps of a phase (by index) and the dependencies between them.

    ``edges`` are sorted by ``(before, after)``; every edge goes from a lower
    index to a higher one, so the graph has no cycles.
    """

    step_count: int
    edges: tuple[Dependency, ...]

    def predecessors(self, index: int) -> tuple[int, ...]:
        """The steps ``index`` waits for, in ascending order."""
        return tuple(edge.before for edge in self.edges if edge.after == index)

    def parallel_batches(self) -> list[list[int]]:
        """Topological layers, each in ascending index order.

        A step lands in the batch after the last batch holding one of its
        predecessors (batch 0 when it has none); running the batches in order,
        the steps of one batch in parallel, respects every dependency.
        """
        layer = [0] * self.step_count
        for edge in self.edges:  # sorted by ``before``, which is always < ``after``
            layer[edge.after] = max(layer[edge.after], layer[edge.before] + 1)
        batches: list[list[int]] = [[] for _ in range(max(layer, default=-1) + 1)]
        for index, depth in enumerate(layer):
            batches[depth].append(index)
        return batches


def _normalise(name: str) -> str:
    stripped = name.strip()
    while stripped.startswith("./"):
        stripped = stripped[2:]
    return stripped.rstrip("/") or stripped


def _literal_prefix(name: str) -> str | None:
    """The part of a glob before its first ``*`` or ``?``; ``None`` for a plain name."""
    cut = min((i for i in (name.find("*"), name.find("?")) if i >= 0), default=-1)
    return None if cut < 0 else name[:cut]


def _contains(outer: str, inner: str) -> bool:
    return inner == outer or (inner.startswith(outer) and inner[len(outer)] in "./[")


def overlaps(first: str, second: str) -> bool:
    """Whether two resource names may denote overlapping data (see the module docstring)."""
    if EVERYTHING in (first, second):
        return True
    a, b = _normalise(first), _normalise(second)
    prefix_a, prefix_b = _literal_prefix(a), _literal_prefix(b)
    if prefix_a is None and prefix_b is None:
        return _contains(a, b) or _contains(b, a)
    head_a = a if prefix_a is None else prefix_a
    head_b = b if prefix_b is None else prefix_b
    return head_a.startswith(head_b) or head_b.startswith(head_a)


def _step_texts(step: Step) -> Iterable[str]:
    command = step.command
    if isinstance(command, WriteFileCommand):
        yield command.path
        yield command.content
    else:
        yield command.text
    yield from step.env.values()
    for optional in (step.when, step.working_dir):
        if optional is not None:
            yield optional


def _handlers(step: Step) -> tuple[Step, ...]:
    handler = () if step.on_failure is None else step.on_failure.handler
    return handler + step.on_success


def _variable_reads(step: Step) -> set[str]:
    names: set[str] = set()
    for text in _step_texts(step):
        names.update(referenced_names(text))
    for handler in _handlers(step):
        names.update(_variable_reads(handler))
    return names


def _variable_writes(step: Step) -> set[str]:
    names = set() if step.capture is None else {step.capture}
    if step.commit_required:
        names.add(".git")
    for handler in _handlers(step):
        names.update(_variable_writes(handler))
    return names


def step_footprint(step: Step) -> Footprint:
    """What ``step`` reads and writes (see the module docstring)."""
    if step.reads is None and step.writes is None:
        return Footprint(None, None)
    reads = None if step.reads is None else frozenset(_variable_reads(step) | set(step.reads))
    writes = None if step.writes is None else frozenset(_variable_writes(step) | set(step.writes))
    return Footprint(reads, writes)


def _shared(first: frozenset[str] | None, second: frozenset[str] | None) -> str | None:
    """A resource both sides touch, if any (``*`` when either side is everything)."""
    if first is None or second is None:
        other = second if first is None else first
        return None if other is not None and not other else EVERYTHING
    for a in sorted(first):
        for b in sorted(second):
            if overlaps(a, b):
                return a if len(a) >= len(b) else b
    return None


def _dependency(i: int, j: int, earlier: Footprint, later: Footprint) -> Dependency | None:
    checks: tuple[tuple[DependencyKind, frozenset[str] | None, frozenset[str] | None], ...] = (
        ("read-after-write", earlier.writes, later.reads),
        ("write-after-write", earlier.writes, later.writes),
        ("write-after-read", earlier.reads, later.writes),
    )
    for kind, first, second in checks:
        resource = _shared(first, second)
        if resource is not None:
            return Dependency(i, j, kind, resource)
    return None


def analyze_dependencies(steps: Sequence[Step]) -> CommandGraph:
    """The dependency graph of ``steps`` (a phase's steps, in file order)."""
    footprints = [step_footprint(step) for step in steps]
    edges = [
        dependency
        for j in range(len(steps))
        for i in range(j)
        if (dependency := _dependency(i, j, footprints[i], footprints[j])) is not None
    ]
    edges.sort(key=lambda edge: (edge.before, edge.after))
    return CommandGraph(len(steps), tuple(edges))
