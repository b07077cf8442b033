"""What checkpoints cost: the SQLite job store per item event, and resuming a 100,000-item job.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/checkpoint.py``; ``--help``).

1. **Per-event store overhead.** The same map phase (``MAP_ITEMS`` items at
   ``MAP_PARALLEL``, each agent writing one file, committing and merging) runs
   in the mock environment with three stores, alternating over ``ROUNDS``: a
   store that does nothing (:class:`NullJobStore`) and the real
   :class:`~envs.store.SqliteJobStore` with ``synchronous=FULL`` (the default)
   and ``NORMAL``. Only the store differs, so the time over the no-op run,
   divided by the item events written (started, succeeded, merged), is what
   a checkpoint costs. Then raw append latencies per event: ``append`` of one
   event a call, and ``append_many`` of ``MAP_PARALLEL`` events a call (what a
   group commit of concurrent agents' events would pay), FULL and NORMAL.
2. **A 100,000-item job with 50,000 items merged**, written with
   ``append_many`` into a temporary store: the time to list jobs (``jobs()``
   and ``item_counts()``) and to plan its resume as
   :func:`phases.jobs.resume_job` does before any agent runs
   (``load_prior_run`` from the item and phase records, ``to_run`` over
   100,000 assignments), part by part; ``events()`` re-done in its parts (what
   folding the log would cost); two hand-written ways of building the same
   ``PriorRun`` from the ``items`` table, and the floor
   (one indexed SELECT of the keys left to run); the rest of what a resume
   does before its first agent, once; and peak memory (tracemalloc).

Goals are reported as PASS/MISS lines, never asserted: the script exits 0
either way. The store files go under ``--tmpdir`` (default: the system's
temporary directory; it should be a disk, as a repository's git directory
is: ``fsync`` on tmpfs costs nothing) and are deleted at the end. Results are
recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, final

import attrs
import trio
from _common import (
    Samples,
    alternate_async,
    cpu_model,
    expect,
    file_system,
    load_average,
    peak_memory,
    print_table,
    timed_async,
    timed_checked,
    verdict,
)

from envs.environment import MapEnv
from envs.job_records import ItemRow, JobRecord, JobStatus
from envs.mock import mock_kit, mock_map_env
from envs.protocols import CommandSpec, JobStore
from envs.store import SqliteJobStore
from envs.store_pruning import JobRows
from envs.store_schema import Synchronous
from envs.system_clock import SystemClock
from phases.map_phase import run_map_phase
from phases.prior_run import PriorRun, input_hash, load_prior_run
from phases.reconcile import reconcile_interrupted
from pure.job_events import (
    ItemMerged,
    ItemStarted,
    ItemSucceeded,
    JobEvent,
    JobPlanned,
    structure_event,
)
from pure.job_state import ItemRecord, ItemStatus, JobState, PhaseStatus
from pure.persistent_vector import PersistentVector
from pure.work_planning import WorkAssignment, plan_work_assignments
from pure.workflow import Workflow
from pure.workflow_parsing import parse_workflow

ROUNDS = 7
MAP_ITEMS = 100
MAP_PARALLEL = 8
EVENTS_PER_ITEM = 3  # item-started, item-succeeded, item-merged
APPEND_ITEMS = 100
BIG_ITEMS = 100_000
BIG_DONE = 50_000
BATCH_EVENTS = 15_000
BIG_ROUNDS = 3
MS = 1_000.0
MIB = 1024.0 * 1024.0

LISTING = "list jobs: jobs() + item_counts()"
RESUME = "resume plan: load_prior_run, to_run"
EVENTS_PARTS = "events() re-done in parts, read-only connection"
FROM_ITEMS = "suggested: PriorRun from items() + phases()"
FROM_TABLE = "suggested: PriorRun from 3 plain SELECTs"
FLOOR = "floor: to_run alone, SELECT of pending and running keys"
TO_RUN_STATUSES = (ItemStatus.PENDING.value, ItemStatus.RUNNING.value)

WORKFLOW = f"""\
name: checkpoint-bench
map:
  input: items.json
  max_parallel: {MAP_PARALLEL}
  agent_template:
    - shell: "work ${{item.name}}"
"""


@final
class NullJobStore:
    """A :class:`~envs.protocols.JobStore` that keeps nothing: the baseline of section 1.

    Every method returns at once, without even a trio checkpoint, so a run
    with it costs the map phase and nothing of a store.
    """

    async def create_job(self, record: JobRecord) -> None:
        return None

    async def job(self, job_id: str) -> JobRecord | None:
        return None

    async def jobs(self) -> list[JobRecord]:
        return []

    async def update_job(
        self,
        job_id: str,
        *,
        status: JobStatus | None = None,
        total: int | None = None,
        add_duration: float = 0.0,
        input_hash: str | None = None,
    ) -> None:
        return None

    async def append(self, job_id: str, event: Any) -> None:
        return None

    async def append_many(self, job_id: str, events: Iterable[Any]) -> None:
        return None

    async def events(self, job_id: str) -> list[Any]:
        return []

    async def events_since(self, job_id: str, seq: int) -> list[tuple[int, Any]]:
        return []

    async def items(
        self, job_id: str, *, statuses: Iterable[ItemStatus] | None = None
    ) -> list[ItemRow]:
        return []

    async def item_counts(self, job_id: str) -> dict[ItemStatus, int]:
        return dict.fromkeys(ItemStatus, 0)

    async def phases(self, job_id: str) -> dict[str, PhaseStatus]:
        return {}

    async def item_records(self, job_id: str) -> list[ItemRecord]:
        return []

    async def phase_outputs(self, job_id: str, phase: str) -> Mapping[str, Any] | None:
        return None

    async def job_rows(self, job_id: str) -> JobRows:
        return JobRows()

    async def delete_job(self, job_id: str) -> JobRows:
        return JobRows()


# -- the machine, the data, the arithmetic --------------------------------------------------


def machine() -> str:
    """CPUs, CPU model, Python and SQLite: what the numbers were measured on."""
    model = cpu_model()
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]},"
        f" SQLite {sqlite3.sqlite_version}, trio {trio.__version__}"
    )



def bench_workflow() -> Workflow:
    workflow: Workflow = parse_workflow(WORKFLOW).unwrap()
    return workflow


def document(count: int) -> list[dict[str, str]]:
    return [{"name": f"item{i}", "path": f"src/module_{i:06d}.py"} for i in range(count)]


def job_record(
    job_id: str, status: JobStatus = JobStatus.RUNNING, digest: str | None = None
) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        workflow_name="checkpoint-bench",
        workflow_path="checkpoint-bench.yml",
        workflow_hash=hashlib.sha256(WORKFLOW.encode()).hexdigest(),
        input_hash=digest,
        repository="/bench",
        job_branch=f"forkmerge/{job_id}",
        status=status,
        created_at=1_700_000_000.0,
        updated_at=1_700_000_000.0,
    )


def sha(text: str) -> str:
    """A commit-id-like hex string (40 digits), the same for the same text."""
    return hashlib.sha1(text.encode()).hexdigest()


def merged_events(keys: Sequence[str], start: float | None = None) -> list[JobEvent]:
    """What a run that merged each of ``keys`` (one attempt each) leaves in the log."""
    events: list[JobEvent] = []
    for offset, key in enumerate(keys):
        at = None if start is None else start + offset
        commit = sha(key)
        events += [
            ItemStarted(key, 1, at=at),
            ItemSucceeded(key, (commit,), at=at),
            ItemMerged(key, sha(commit), at=at),
        ]
    return events


def durations(marks: Sequence[float]) -> list[float]:
    """The time between each pair of successive ``perf_counter`` marks."""
    return [end - start for start, end in itertools.pairwise(marks)]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * MS:.3f} ms"


# -- 1. the store's cost per item event -----------------------------------------------------


def map_env(job_id: str, store: JobStore) -> MapEnv:
    """A fresh mock map environment whose agents each write a file, with ``store`` in it."""
    env = mock_map_env(job_id=job_id)
    kit = mock_kit(env)

    def out_file(spec: CommandSpec) -> str:
        return f"out/{spec.argv[-1].split()[-1]}.txt"

    kit.executor.on("work", effect=kit.writes(out_file, "done\n"))
    return attrs.evolve(env, services=attrs.evolve(env.services, store=store))


async def timed_map_phase(workflow: Workflow, store: JobStore, job_id: str) -> float:
    """Seconds one run of the map phase takes with ``store`` (its job set up untimed)."""
    assignments = plan_work_assignments(document(MAP_ITEMS), workflow.map)
    env = map_env(job_id, store)
    await store.create_job(job_record(job_id))
    await store.append(job_id, JobPlanned(tuple(a.item_key for a in assignments)))
    phase = run_map_phase(workflow, assignments, {}, max_parallel=MAP_PARALLEL)
    started = time.perf_counter()
    outcome = await phase.run(env)
    seconds = time.perf_counter() - started
    statuses = [result.status for result in outcome.unwrap().results]
    expect(statuses, ["merged"] * MAP_ITEMS, f"item statuses of {job_id}")
    if not isinstance(store, NullJobStore):
        expect(len(await store.events(job_id)), 1 + EVENTS_PER_ITEM * MAP_ITEMS, "events stored")
    return seconds


def extra_per_event(store: Samples, base: Samples, events: int) -> float:
    """The median over rounds of the time ``store`` took over ``base``, per event written."""
    return statistics.median(
        (mine - theirs) / events for mine, theirs in zip(store.seconds, base.seconds, strict=True)
    )


async def bench_store_overhead(directory: str) -> list[bool]:
    print(f"\n## 1. The map phase over {MAP_ITEMS} items at max_parallel {MAP_PARALLEL}, by store")
    workflow = bench_workflow()
    events = EVENTS_PER_ITEM * MAP_ITEMS
    stores: dict[str, JobStore] = {"no-op store": NullJobStore()}
    for mode in ("FULL", "NORMAL"):
        path = os.path.join(directory, f"map-{mode}.sqlite3")
        stores[f"SQLite {mode}"] = SqliteJobStore(path, synchronous=mode)
    runs = itertools.count()

    def contender(store: JobStore) -> Callable[[], Awaitable[float]]:
        return lambda: timed_map_phase(workflow, store, f"map-{next(runs)}")

    samples = await alternate_async({name: contender(s) for name, s in stores.items()}, ROUNDS)
    for store in stores.values():
        if isinstance(store, SqliteJobStore):
            store.close()
    base = samples["no-op store"]
    rows = [
        [
            name,
            ms(one.median),
            ms(one.best),
            f"{one.ratio_to(base):.2f}x",
            ms(extra_per_event(one, base, events)),
        ]
        for name, one in samples.items()
    ]
    print_table(["store", "median run", "best run", "x no-op", "extra per event"], rows)
    print(f"({events} item events a run, in {2 * MAP_ITEMS} appends: started; succeeded + merged)")
    extra = extra_per_event(samples["SQLite FULL"], base, events)
    met = verdict(
        extra < 0.001,
        "SQLite FULL adds under 1 ms per item event (median over rounds)",
        f"{ms(extra)} per event ({ms(extra * EVENTS_PER_ITEM)} per item)",
    )
    await bench_append_latency(directory)
    return [met]


async def append_latencies(store: SqliteJobStore, job_id: str, group: int) -> list[float]:
    """Seconds per event of appending each item's started, succeeded, merged, ``group`` a call.

    ``group`` 1 is ``append``; more is ``append_many`` (one transaction, one sync).
    """
    keys = tuple(f"item-{index:04d}" for index in range(APPEND_ITEMS))
    await store.create_job(job_record(job_id))
    await store.append(job_id, JobPlanned(keys))
    events = merged_events(keys)
    latencies = []
    for first in range(0, len(events), group):
        batch = events[first : first + group]
        started = time.perf_counter()
        if group == 1:
            await store.append(job_id, batch[0])
        else:
            await store.append_many(job_id, batch)
        latencies.append((time.perf_counter() - started) / len(batch))
    return latencies


async def bench_append_latency(directory: str) -> None:
    count = EVENTS_PER_ITEM * APPEND_ITEMS
    print(f"\nRaw SqliteJobStore appends of {count} events, {ROUNDS} rounds, per event:")
    modes: tuple[Synchronous, ...] = ("FULL", "NORMAL")
    stores = {
        mode: SqliteJobStore(os.path.join(directory, f"append-{mode}.sqlite3"), synchronous=mode)
        for mode in modes
    }
    contenders = [(mode, group) for mode in modes for group in (1, MAP_PARALLEL)]
    latencies: dict[tuple[Synchronous, int], list[float]] = {one: [] for one in contenders}
    for round_index in range(ROUNDS):
        shift = round_index % len(contenders)
        for mode, group in [*contenders[shift:], *contenders[:shift]]:
            job_id = f"append-{group}-{round_index}"
            latencies[mode, group] += await append_latencies(stores[mode], job_id, group)
    for store in stores.values():
        store.close()
    rows = [
        [
            f"{mode}, " + ("append, one event a call" if group == 1 else f"append_many of {group}"),
            ms(statistics.median(found)),
            ms(percentile(found, 0.95)),
            ms(max(found)),
        ]
        for (mode, group), found in latencies.items()
    ]
    print_table(["synchronous, call", "median", "p95", "max"], rows)


# -- 2. a 100,000-item job, half done -------------------------------------------------------


@attrs.frozen
class BigJob:
    """The store holding the half-done job, its file, its record, and its assignments."""

    store: SqliteJobStore
    path: str
    record: JobRecord
    assignments: list[WorkAssignment]


async def create_big_job(directory: str) -> BigJob:
    """Plan 100,000 items and write the job: planned, then 50,000 items merged."""
    print(f"\n## 2. A {BIG_ITEMS:,}-item job with {BIG_DONE:,} items merged")
    items = document(BIG_ITEMS)
    started = time.perf_counter()
    assignments = plan_work_assignments(items, bench_workflow().map)
    planned = time.perf_counter() - started
    path = os.path.join(directory, "big.sqlite3")
    store = SqliteJobStore(path)
    record = job_record("big-job", JobStatus.INTERRUPTED, input_hash(items))
    await store.create_job(record)
    keys = tuple(assignment.item_key for assignment in assignments)
    written = await timed_async(lambda: store.append(record.job_id, JobPlanned(keys, 1.7e9)))
    events = merged_events(keys[:BIG_DONE], 1.7e9 + 1)

    async def write_items() -> None:
        for first in range(0, len(events), BATCH_EVENTS):
            await store.append_many(record.job_id, events[first : first + BATCH_EVENTS])

    items_written = await timed_async(write_items)
    print(
        f"plan_work_assignments over {BIG_ITEMS:,} items: {planned:.2f} s; job-planned append:"
        f" {written:.2f} s; {len(events):,} item events in batches of {BATCH_EVENTS:,}:"
        f" {items_written:.1f} s ({items_written / len(events) * 1e6:.0f} µs per event);"
        f" database {os.path.getsize(path) / MIB:.1f} MiB"
    )
    return BigJob(store, path, record, assignments)


@attrs.define
class Parts:
    """Seconds of each named part of a contender, one entry per round."""

    seconds: dict[str, dict[str, list[float]]] = attrs.field(factory=dict)

    def record(self, contender: str, names: Sequence[str], marks: Sequence[float]) -> None:
        """Record the times between successive ``marks`` as the parts ``names``."""
        parts = self.seconds.setdefault(contender, {})
        for name, seconds in zip(names, durations(marks), strict=True):
            parts.setdefault(name, []).append(seconds)

    def rows(self, contender: str) -> list[list[str]]:
        """A table row (median, best) per part of ``contender``; none if it has no parts."""
        found = self.seconds.get(contender, {})
        return [[f"  {name}", ms(statistics.median(s)), ms(min(s))] for name, s in found.items()]


def read_only(path: str) -> sqlite3.Connection:
    """A second, read-only connection to the store's file."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)


async def list_jobs(store: SqliteJobStore) -> dict[str, dict[ItemStatus, int]]:
    """What ``python -m phases jobs`` reads: every record, and each job's item counts."""
    return {record.job_id: await store.item_counts(record.job_id) for record in await store.jobs()}


async def resume_plan(job: BigJob, parts: Parts | None = None) -> list[WorkAssignment]:
    """What resume_job does before agents run: load_prior_run (item records), to_run."""
    marks = [time.perf_counter()]
    prior = await load_prior_run(job.store, job.record)
    marks.append(time.perf_counter())
    to_run = prior.to_run(job.assignments)
    marks.append(time.perf_counter())
    if parts is not None:
        parts.record(RESUME, ("load_prior_run (item and phase records)", "to_run"), marks)
    return to_run


def events_breakdown(job: BigJob, parts: Parts) -> float:
    """``events()`` re-done in its parts, as the store does them: SELECT, JSON, cattrs."""
    connection = read_only(job.path)
    try:
        marks = [time.perf_counter()]
        rows = connection.execute(
            "SELECT seq, kind, payload FROM events WHERE job_id = ? AND seq > 0 ORDER BY seq",
            (job.record.job_id,),
        ).fetchall()
        marks.append(time.perf_counter())
        data = [{**json.loads(payload), "kind": kind} for _seq, kind, payload in rows]
        marks.append(time.perf_counter())
        events = [structure_event(one) for one in data]
        marks.append(time.perf_counter())
    finally:
        connection.close()
    expect(len(events), 1 + EVENTS_PER_ITEM * BIG_DONE, "events read")
    parts.record(EVENTS_PARTS, ("SELECT", "json.loads", "structure_event (cattrs)"), marks)
    return marks[-1] - marks[0]


ItemColumns = tuple[str, str, int, str | None, str | None, str | None]
"""An item as the ``items`` table has it: key, status, attempts, merge commit, error, skip."""

_STATUS_OF = {status.value: status for status in ItemStatus}


def prior_from_rows(
    rows: Iterable[ItemColumns], phases: Mapping[str, PhaseStatus], outputs: Any, digest: str | None
) -> PriorRun:
    """The suggested basis of a resume: the state the ``items`` table holds, no event folded.

    It has all a resume reads from the fold but each item's commits and
    output (``earlier_results`` reports the last commit of a merged item).
    """
    records = [
        ItemRecord(key, _STATUS_OF[status], attempts, (), None, merge, error, skip)
        for key, status, attempts, merge, error, skip in rows
    ]
    keys = tuple(record.key for record in records)
    tally = Counter(record.status for record in records)
    state = JobState(
        keys,
        PersistentVector.of(records),
        tuple(tally[status] for status in ItemStatus),
        MappingProxyType(dict(phases)),
        True,
        MappingProxyType({key: index for index, key in enumerate(keys)}),
    )
    return PriorRun(state, outputs, digest)


async def plan_from_items(job: BigJob) -> list[WorkAssignment]:
    """:func:`prior_from_rows` through the store's API (``items()``, ``phases()``), to_run."""
    job_id = job.record.job_id
    rows = await job.store.items(job_id)
    columns = (
        (
            row.item_key,
            str(row.status),
            row.attempts,
            row.merge_commit,
            row.last_error,
            row.skip_reason,
        )
        for row in rows
    )
    phases = await job.store.phases(job_id)
    return prior_from_rows(columns, phases, None, job.record.input_hash).to_run(job.assignments)


def plan_from_table(job: BigJob, parts: Parts | None = None) -> list[WorkAssignment]:
    """:func:`prior_from_rows` from three plain queries (items, phases, setup's outputs), to_run."""
    job_id = job.record.job_id
    connection = read_only(job.path)
    marks = [time.perf_counter()]
    try:
        rows = connection.execute(
            "SELECT item_key, status, attempts, merge_commit, last_error, skip_reason"
            " FROM items WHERE job_id = ? ORDER BY idx",
            (job_id,),
        ).fetchall()
        marks.append(time.perf_counter())
        phases = connection.execute(
            "SELECT phase, status FROM phases WHERE job_id = ?", (job_id,)
        ).fetchall()
        finished = connection.execute(
            "SELECT payload FROM events WHERE job_id = ? AND kind = 'phase-finished'", (job_id,)
        ).fetchall()
    finally:
        connection.close()
    marks.append(time.perf_counter())
    outputs = None
    for (payload,) in finished:
        phase = json.loads(payload)
        if phase["phase"] == "setup" and phase["success"]:
            outputs = phase["outputs"]
    known = {phase: PhaseStatus(status) for phase, status in phases}
    prior = prior_from_rows(rows, known, outputs, job.record.input_hash)
    marks.append(time.perf_counter())
    to_run = prior.to_run(job.assignments)
    marks.append(time.perf_counter())
    if parts is not None:
        names = ("SELECT items", "SELECT phases, setup's outputs (scans the log)")
        parts.record(FROM_TABLE, (*names, "ItemRecords, JobState", "to_run"), marks)
    return to_run


def plan_floor(job: BigJob) -> list[WorkAssignment]:
    """The least a resume must read to know what to run: keys (and attempts) left to run."""
    connection = read_only(job.path)
    try:
        rows = connection.execute(
            "SELECT item_key, attempts FROM items WHERE job_id = ? AND status IN (?, ?)",
            (job.record.job_id, *TO_RUN_STATUSES),
        ).fetchall()
    finally:
        connection.close()
    keys = {key for key, _attempts in rows}
    return [assignment for assignment in job.assignments if assignment.item_key in keys]


async def before_first_agent(job: BigJob) -> None:
    """Time, once, the rest of what a resume does before its first agent (mock git)."""
    prior = await load_prior_run(job.store, job.record)
    mock = map_env(job.record.job_id, job.store)
    env = attrs.evolve(mock, services=attrs.evolve(mock.services, clock=SystemClock()))
    marks = [time.perf_counter()]
    reconciled = (await reconcile_interrupted(prior, job.assignments).run(env)).unwrap()
    marks.append(time.perf_counter())
    earlier = reconciled.earlier_results(job.assignments)
    marks.append(time.perf_counter())
    reconciled.attempts()
    marks.append(time.perf_counter())
    expect(len(earlier), BIG_DONE, "earlier results")
    reconcile, results, attempts = durations(marks)
    print(
        f"also before the first agent (once): reconcile_interrupted {ms(reconcile)} (mock git,"
        f" no leftovers), earlier_results {ms(results)}, attempts {ms(attempts)}"
    )


def keys_of(assignments: Sequence[WorkAssignment]) -> list[str]:
    return [assignment.item_key for assignment in assignments]


async def bench_resume(directory: str) -> list[bool]:
    job = await create_big_job(directory)
    remaining = BIG_ITEMS - BIG_DONE
    expected = keys_of(job.assignments[BIG_DONE:])
    counts = {**dict.fromkeys(ItemStatus, 0), ItemStatus.PENDING: remaining}
    counts[ItemStatus.MERGED] = BIG_DONE
    parts = Parts()

    async def resume_keys() -> list[str]:
        return keys_of(await resume_plan(job, parts))

    async def breakdown() -> float:
        gc.collect()
        return events_breakdown(job, parts)

    async def from_items() -> list[str]:
        return keys_of(await plan_from_items(job))

    async def from_table() -> list[str]:
        return keys_of(plan_from_table(job, parts))

    async def floor() -> list[str]:
        return keys_of(plan_floor(job))

    listing = partial(list_jobs, job.store)
    contenders: dict[str, Callable[[], Awaitable[float]]] = {
        LISTING: partial(timed_checked, listing, {job.record.job_id: counts}, "listing"),
        RESUME: partial(timed_checked, resume_keys, expected, "to run (events)"),
        EVENTS_PARTS: breakdown,
        FROM_ITEMS: partial(timed_checked, from_items, expected, "to run (items())"),
        FROM_TABLE: partial(timed_checked, from_table, expected, "to run (SELECT)"),
        FLOOR: partial(timed_checked, floor, expected, "to run (SELECT pending, running)"),
    }
    samples = await alternate_async(contenders, BIG_ROUNDS)
    print(f"\n{BIG_ROUNDS} alternating rounds; indented rows are parts of the row above them:")
    rows: list[list[str]] = []
    for name, one in samples.items():
        rows += [[name, ms(one.median), ms(one.best)], *parts.rows(name)]
    print_table(["what", "median", "best"], rows)
    await before_first_agent(job)
    peak, to_run = await peak_memory(partial(resume_plan, job))
    expect(keys_of(to_run), expected, "assignments to run (traced)")
    del to_run
    peak_items, to_run = await peak_memory(partial(plan_from_items, job))
    expect(keys_of(to_run), expected, "assignments to run from items() (traced)")
    print(
        f"peak memory (tracemalloc: Python allocations, not SQLite's page cache): resume plan"
        f" {peak / MIB:.1f} MiB; PriorRun from items() + phases() {peak_items / MIB:.1f} MiB"
    )
    job.store.close()
    planned = samples[RESUME]
    return [
        verdict(
            samples[LISTING].median < 1.0,
            "listing jobs takes under 1 s",
            ms(samples[LISTING].median),
        ),
        verdict(
            planned.median < 1.0,
            f"planning the resume of a {BIG_ITEMS:,}-item job takes under 1 s",
            f"{planned.median:.2f} s (best {planned.best:.2f} s)",
        ),
        verdict(
            peak < 200 * 1_000_000,
            "the resume plan's peak memory is under 200 MB",
            f"{peak / 1_000_000:.1f} MB",
        ),
    ]


async def run_all(directory: str) -> list[bool]:
    verdicts = await bench_store_overhead(directory)
    verdicts += await bench_resume(directory)
    return verdicts


def main(argv: Sequence[str] | None = None) -> int:
    """Run both sections, print a summary line and return 0 (goals are reported, not asserted)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument(
        "--tmpdir",
        default=tempfile.gettempdir(),
        help="where the store files go (default: %(default)s); use a disk, not tmpfs",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forkmerge-checkpoint-", dir=args.tmpdir) as directory:
        print(f"Checkpoints: {machine()}")
        print(
            f"store files in {directory} ({file_system(directory)}); {ROUNDS} alternating rounds"
            f" ({BIG_ROUNDS} in section 2); gc enabled; load average {load_average()}"
        )
        verdicts = trio.run(run_all, directory)
    print(
        f"\n{sum(verdicts)}/{len(verdicts)} goals met in {time.perf_counter() - start:.1f} s,"
        f" load average now {load_average()} (a shared machine: rerun if a MISS is close)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
