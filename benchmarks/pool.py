"""The worktree pool against one worktree per agent (``--no-pool``), in a whole job.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/pool.py``; ``--help``).

The job of issue 6: 500 items at max_parallel 8 on a generated repository of 20,000
small files (packed, one commit), each agent writing one file with a ``shell:`` step.
Both contenders run it the way ``python -m phases run`` does, through
``phases.jobs.run_new_job`` in ``envs.local.local_env``, each job with its own
SQLite job store in a temporary file and its own worktree directory; they differ
only in ``pool=True`` (agents borrow one of 8 worktrees kept for the job, reset to a
fresh branch at the job head) or ``pool=False`` (a worktree created and removed per
agent). They take turns in the same repository, ``--rounds`` rounds (default 1),
the order rotating. Each job is checked afterwards (untimed): succeeded, every
item's file on its job branch, no worktree and no agent branch left.

Reported per contender: the job's total time; the time its agents spent acquiring
and releasing worktrees (``JobResult.resources()``: summed over agents, so eight
agents waiting at once count eight times, and the pool's own metrics beside it);
pool hits, misses and ``peak_slots``; and the disk the job's worktrees took,
sampled by a background thread during the run (how many worktree directories,
every ``--sample-interval`` / 10 seconds; their size on disk, ``du``-style, every
``--sample-interval`` seconds). Goals (PASS/MISS lines, never asserted; the script
exits 0 either way): acquire + release at least 5x cheaper with the pool, and peak
disk use bounded by max_parallel worktrees (plus the job's own worktree).

**Scaling down.** The job without the pool costs about ``items x (create + remove
one worktree)`` (worktrees are created one at a time, under the worktree manager's
lock) times :data:`JOB_OVERHEAD`. The script first measures that cycle on the
20,000-file repository; if 500 items would take longer than ``--budget`` seconds
(default 240) it takes the first smaller size of :data:`LADDER` that fits (the cost
taken as proportional to the number of files) and says so. ``--files`` and
``--items`` run exactly that size instead, without measuring first.

Repositories are created under ``--tmpdir`` (default ``/dev/shm`` if usable, else the
system's temporary directory) and deleted at the end, whatever happens. Results are
recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar, final

import attrs
import pygit2
import trio
from _common import (
    Samples,
    alternate_async,
    expect,
    file_system,
    load_average,
    print_table,
    verdict,
)
from worktree_cycle import (
    check_branch,
    default_tmpdir,
    generated_repository,
    machine,
    relative_file,
    succeeded,
)

from envs.disk_usage import disk_usage
from envs.git_worktrees import GitWorktreeManager
from envs.local import local_env
from envs.store import SqliteJobStore
from phases.jobs import new_job_record, run_new_job
from phases.results import JobResult
from pure.workflow import Workflow
from pure.workflow_parsing import parse_workflow

PARALLEL = 8
ISSUE_FILES = 20_000
ISSUE_ITEMS = 500
BUDGET = 240.0  # seconds one job may take before the benchmark scales down
# A job without the pool does more than create and remove worktrees (commits, merges,
# store writes, on shared CPUs): measured 1.33x the calibrated cycles at 5,000 files.
JOB_OVERHEAD = 1.4
CALIBRATION_CYCLES = 2
OPERATION_ROUNDS = 5
GOAL_RATIO = 5.0
MIB = 1024 * 1024

N = TypeVar("N", int, float)


@attrs.frozen
class Size:
    """How big the benchmark's job is: files in the repository, work items."""

    files: int
    items: int

    def __str__(self) -> str:
        return f"{self.files:,} files x {self.items} items"


# Smaller sizes to fall back on, in order of preference: the issue's repository with
# fewer items first, then a smaller repository.
LADDER = (
    Size(ISSUE_FILES, ISSUE_ITEMS),
    Size(ISSUE_FILES, 200),
    Size(5_000, ISSUE_ITEMS),
    Size(5_000, 200),
    Size(2_000, 200),
    Size(2_000, 100),
)

WORKFLOW = f"""\
name: bench-pool
map:
  input: items.json
  max_parallel: {PARALLEL}
  agent_template:
    - shell: "printf '%s' ${{item.text}} > out/${{item.name}}.txt"
"""


def job_items(count: int) -> list[dict[str, str]]:
    return [{"name": f"item-{n:03d}", "text": f"agent {n} was here"} for n in range(count)]


def job_repository(work: str, size: Size) -> str:
    """A packed repository of ``size.files`` files, plus the items and an ``out/``."""
    extra = {"items.json": json.dumps(job_items(size.items)), "out/.keep": ""}
    path = os.path.join(work, f"repo-{size.files}")
    return generated_repository(path, size.files, extra, packed=True)


def checkout_bytes(repo: str) -> int:
    """The disk one checkout of the repository's files takes (its working tree, no .git)."""
    return disk_usage(repo) - disk_usage(os.path.join(repo, ".git"))


# -- choosing the size ----------------------------------------------------------------------


@attrs.frozen
class Calibration:
    """What one agent worktree costs without the pool, on a repository of ``files``."""

    files: int
    cycle_seconds: float  # create_agent_worktree + remove_worktree, median

    def projected(self, size: Size) -> float:
        """Seconds the job of ``size`` would take without the pool (about: its checkouts and
        removals one after the other, plus :data:`JOB_OVERHEAD`)."""
        return JOB_OVERHEAD * size.items * self.cycle_seconds * size.files / self.files


async def calibrate(repo: str, work: str, files: int) -> Calibration:
    """Time a few agent worktrees created and removed one after the other in ``repo``, a
    repository of ``files`` files."""
    manager = GitWorktreeManager(repo, state_dir=os.path.join(work, "calibration"))
    job = succeeded(await manager.create_job_worktree("calibrate"), "create_job_worktree")
    cycles = []
    for index in range(CALIBRATION_CYCLES):
        gc.collect()
        start = time.perf_counter()
        created = await manager.create_agent_worktree(f"calibrate-{index}", job.branch)
        agent = succeeded(created, "create_agent_worktree")
        succeeded(await manager.remove_worktree(agent), "remove_worktree")
        cycles.append(time.perf_counter() - start)
    succeeded(await manager.remove_worktree(job, delete_branch=False), "remove_worktree")
    return Calibration(files, statistics.median(cycles))


def choose_size(calibration: Calibration, budget: float) -> Size:
    """The first size of :data:`LADDER` whose job without the pool fits ``budget`` (else the
    smallest)."""
    for size in LADDER:
        if calibration.projected(size) <= budget:
            return size
    return LADDER[-1]


# -- sampling the disk ----------------------------------------------------------------------


@attrs.frozen
class DiskPeak:
    """What the sampler saw of a worktree directory during one job."""

    peak_count: int  # worktree directories at once
    peak_bytes: int  # their size on disk, all together
    largest_bytes: int  # the largest single worktree directory seen
    count_samples: int
    size_samples: int


@final
class DiskSampler:
    """A background thread watching ``directory``: how many worktrees, how much disk.

    Counting the ``fm-*`` directories is cheap and done every ``interval / 10``
    seconds; measuring their size walks every file and is done every ``interval``
    (it holds the GIL while it walks: a longer interval disturbs the job less).
    """

    def __init__(self, directory: str, interval: float) -> None:
        self._directory = directory
        self._tick = interval / 10
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="disk-sampler", daemon=True)
        self._peak_count = self._peak_bytes = self._largest = 0
        self._counts = self._sizes = 0

    def _worktrees(self) -> list[str]:
        try:
            with os.scandir(self._directory) as entries:
                return [entry.path for entry in entries if entry.name.startswith("fm-")]
        except FileNotFoundError:
            return []

    def _watch(self) -> None:
        for tick in itertools.count():
            paths = self._worktrees()
            self._counts += 1
            self._peak_count = max(self._peak_count, len(paths))
            if tick % 10 == 0:
                sizes = [disk_usage(path) for path in paths]
                self._sizes += 1
                self._peak_bytes = max(self._peak_bytes, sum(sizes))
                self._largest = max([self._largest, *sizes])
            if self._stop.wait(self._tick):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> DiskPeak:
        """Stop the thread; what it saw."""
        self._stop.set()
        self._thread.join()
        return DiskPeak(
            self._peak_count, self._peak_bytes, self._largest, self._counts, self._sizes
        )


# -- one job --------------------------------------------------------------------------------


@attrs.frozen
class JobRun:
    """One contender's job: how long it took, its result, and the disk it used."""

    seconds: float
    result: JobResult
    disk: DiskPeak

    @property
    def worktree_seconds(self) -> float:
        """Acquire + release, summed over the agents (``JobResult.resources()``)."""
        resources = self.result.resources()
        return float(resources["acquire_seconds"] + resources["release_seconds"])


@attrs.frozen
class Bench:
    """The repository and workflow every job of the benchmark runs on."""

    repo: str
    work: str
    workflow: Workflow
    size: Size
    interval: float


def check_job(bench: Bench, job: JobResult) -> None:
    """Succeeded; every item's file is on the job branch; no agent branch, no worktree left."""
    expect((job.status, job.map.successful), ("succeeded", bench.size.items), job.job_id)
    repo = pygit2.Repository(bench.repo)
    items = job_items(bench.size.items)
    check_branch(repo, job.job_branch, {f"out/{it['name']}.txt": it["text"] for it in items})
    prefix = f"forkmerge-agents/{job.job_id}/"
    left = [name for name in repo.branches.local if name.startswith(prefix)]
    expect(left, [], f"agent branches of {job.job_id} left behind")
    expect(repo.list_worktrees(), [], f"worktrees left behind by {job.job_id}")


async def run_job(bench: Bench, job_id: str, *, pool: bool) -> JobRun:
    """Run the job through ``run_new_job`` in ``local_env``; timed, sampled, then checked."""
    record = new_job_record(
        bench.workflow,
        job_id=job_id,
        workflow_path=os.path.join(bench.repo, "bench-pool.yml"),
        workflow_text=WORKFLOW,
        repository=bench.repo,
        options={"max_parallel": PARALLEL, "pool": pool},
        now=time.time(),
    )
    worktrees = os.path.join(bench.work, "state", job_id)
    effect = run_new_job(bench.workflow, record, variables={}, max_parallel=PARALLEL, pool=pool)
    with SqliteJobStore(os.path.join(bench.work, f"{job_id}.sqlite3")) as store:
        env = local_env(bench.repo, store=store, worktrees_dir=worktrees)
        sampler = DiskSampler(worktrees, bench.interval)
        gc.collect()
        sampler.start()
        start = time.perf_counter()
        try:
            result = await effect.run(env)
        finally:
            seconds = time.perf_counter() - start
            disk = sampler.stop()
    job = succeeded(result, f"job {job_id}")
    check_job(bench, job)
    return JobRun(seconds, job, disk)


# -- one worktree at a time ----------------------------------------------------------------

OPERATIONS = {
    "pool: assign (switch, reset, check)": "assign",
    "pool: release": "release",
    "pool: the two": "pool",
    "a full clean check (not the pool's)": "clean",
    "no pool: create_agent_worktree": "create",
    "no pool: remove_worktree": "remove",
    "no pool: the two": "fresh",
}


def leave_changes(path: str, index: int) -> None:
    """What an agent leaves for the next one: a changed file, new files and directories."""
    with open(os.path.join(path, relative_file(index)), "a", encoding="utf-8") as file:
        file.write(f"changed by agent {index}\n")
    os.makedirs(os.path.join(path, "build", f"agent-{index}"), exist_ok=True)
    with open(os.path.join(path, "build", f"agent-{index}", "out.txt"), "w") as file:
        file.write("built\n")


async def bench_operations(bench: Bench) -> None:
    """One slot reused against a worktree created and removed per agent, alternating, with
    nothing else running: the cost of each call without the job's contention."""
    print(
        f"\n## One agent's worktree at a time on the same repository ({OPERATION_ROUNDS}"
        " rounds after a warm-up; each agent leaves a changed file and an untracked directory)"
    )
    manager = GitWorktreeManager(bench.repo, state_dir=os.path.join(bench.work, "operations"))
    job = succeeded(await manager.create_job_worktree("operations"), "create_job_worktree")
    created = await manager.create_pool_worktree("operations", 0, job.branch)
    slot = succeeded(created, "create_pool_worktree")
    times: dict[str, list[float]] = {key: [] for key in OPERATIONS.values()}
    for index in range(OPERATION_ROUNDS + 1):
        gc.collect()
        start = time.perf_counter()
        assigned = await manager.assign_pool_worktree(slot, f"agent-{index}", job.branch)
        agent = succeeded(assigned, "assign_pool_worktree")
        assigned_at = time.perf_counter()
        expect(succeeded(await manager.pool_worktree_clean(agent), "clean"), True, "clean slot")
        checked_at = time.perf_counter()
        leave_changes(agent.path, index)  # the agent's work, untimed
        releasing = time.perf_counter()
        succeeded(await manager.release_pool_worktree(agent), "release_pool_worktree")
        done = time.perf_counter()
        fresh = await manager.create_agent_worktree(f"fresh-{index}", job.branch)
        own = succeeded(fresh, "create_agent_worktree")
        made = time.perf_counter()
        leave_changes(own.path, index)
        removing = time.perf_counter()
        succeeded(await manager.remove_worktree(own), "remove_worktree")
        removed = time.perf_counter()
        if index == 0:
            continue  # the warm-up: the slot had nothing to reset
        # The pool's path is assign + release: the assignment checks what its reset
        # touched. The full check (a status scan and a directory walk) is timed apart.
        pool = [assigned_at - start, done - releasing]
        fresh_times = [made - done, removed - removing]
        values = [*pool, sum(pool), checked_at - assigned_at, *fresh_times, sum(fresh_times)]
        for key, value in zip(OPERATIONS.values(), values, strict=True):
            times[key].append(value)
    succeeded(await manager.remove_worktree(slot), "remove_worktree")
    succeeded(await manager.remove_worktree(job, delete_branch=False), "remove_worktree")
    samples = {key: Samples(key, tuple(values)) for key, values in times.items()}
    print_table(
        ["operation", "median", "best"],
        [
            [label, f"{samples[key].median * 1000:.1f} ms", f"{samples[key].best * 1000:.1f} ms"]
            for label, key in OPERATIONS.items()
        ],
    )
    print(
        "without the pool, an agent's worktree costs"
        f" {samples['fresh'].ratios_to(samples['pool'])} what a pooled one does (reported)"
    )


# -- the report -----------------------------------------------------------------------------


def mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def acquisitions(run: JobRun) -> tuple[float, float, float]:
    """Acquire seconds of the first ``PARALLEL`` agents to start (with the pool: the slots'
    creation), of all the others, and the mean release seconds."""
    ordered = sorted(run.result.map.results, key=lambda result: result.started)
    first = sum(result.worktree_seconds[0] for result in ordered[:PARALLEL])
    rest = sum(result.worktree_seconds[0] for result in ordered[PARALLEL:])
    release = statistics.mean(result.worktree_seconds[1] for result in ordered)
    return first, rest, release


def report(runs: dict[str, list[JobRun]], one_checkout: int) -> list[bool]:
    """Print the tables and the verdicts; the verdicts."""
    pooled, unpooled = runs["pool"], runs["no pool"]
    rows = []
    for name, each in runs.items():
        for number, run in enumerate(each, 1):
            resources = run.result.resources()
            metrics = resources["pool"]
            items = len(run.result.map.results)
            rows.append(
                [
                    f"{name} #{number}",
                    f"{run.seconds:.1f} s",
                    f"{run.worktree_seconds:.1f} s",
                    f"{resources['acquire_seconds']:.1f} / {resources['release_seconds']:.1f}",
                    f"{run.worktree_seconds / items * 1000:.0f} ms",
                    f"{metrics['acquire_seconds']:.1f} / {metrics['release_seconds']:.1f}",
                    f"{metrics['hits']} / {metrics['misses']}",
                    str(metrics["peak_slots"]),
                    str(run.disk.peak_count),
                    f"{mib(run.disk.peak_bytes)} ({run.disk.peak_bytes / one_checkout:.1f})",
                ]
            )
    print_table(
        [
            "job",
            "total",
            "acq+rel",
            "acquire / release",
            "acq+rel per item",
            "pool metrics acq / rel",
            "hits / misses",
            "peak_slots",
            "peak dirs",
            "peak disk (checkouts)",
        ],
        rows,
    )
    samples = ", ".join(
        f"{name} {run.disk.count_samples}/{run.disk.size_samples}"
        for name, each in runs.items()
        for run in each
    )
    print(
        "acq+rel: acquire + release seconds summed over the agents (JobResult.resources());"
        f" peak dirs / disk: sampled worktree directories of the job (samples counted/sized:"
        f" {samples}); one checkout of HEAD: {mib(one_checkout)}"
    )
    for name, each in runs.items():
        for number, run in enumerate(each, 1):
            first, rest, release = acquisitions(run)
            others = len(run.result.map.results) - PARALLEL
            print(
                f"{name} #{number}: the first {PARALLEL} agents' acquisitions took {first:.1f} s"
                f" in all, the other {others}'s {rest:.1f} s ({rest / others * 1000:.0f} ms"
                f" each); a release {release * 1000:.0f} ms on average"
            )
    totals = {
        name: Samples(name, tuple(run.seconds for run in each)) for name, each in runs.items()
    }
    worktree = {
        name: Samples(name, tuple(run.worktree_seconds for run in each))
        for name, each in runs.items()
    }
    saved = 1 / worktree["pool"].ratio_to(worktree["no pool"])
    print(
        f"total time, pool / no pool: {totals['pool'].ratios_to(totals['no pool'])}"
        " (reported, no goal)"
    )
    bound = PARALLEL + 1
    peaks = [run.disk.peak_count for run in (*pooled, *unpooled)]
    slots = [run.result.pool.peak_slots for run in (*pooled, *unpooled) if run.result.pool]
    largest = max(run.disk.peak_bytes for run in (*pooled, *unpooled))
    return [
        verdict(
            saved >= GOAL_RATIO,
            f"acquire + release at least {GOAL_RATIO:g}x cheaper with the pool",
            f"{saved:.1f}x ({worktree['pool'].median:.1f} s vs"
            f" {worktree['no pool'].median:.1f} s summed over the agents; median of rounds)",
        ),
        verdict(
            max(slots) <= PARALLEL and max(peaks) <= bound,
            f"peak disk bounded by max_parallel worktrees ({PARALLEL} agents' + the job's)",
            f"peak_slots {max(slots)} (pool metrics), at most {max(peaks)} worktree directories"
            f" sampled at once, at most {mib(largest)} = {largest / one_checkout:.1f} checkouts"
            " of HEAD",
        ),
    ]


# -- the whole script -----------------------------------------------------------------------


async def decide_size(work: str, requested: Size | None, budget: float) -> tuple[str, Size]:
    """The repository and size to run: as asked, or the issue's scaled down to ``budget``."""
    if requested is not None:
        print(f"size as asked: {requested} (not calibrated, not scaled)")
        return job_repository(work, requested), requested
    issue = LADDER[0]
    start = time.perf_counter()
    repo = job_repository(work, issue)
    made = time.perf_counter() - start
    calibration = await calibrate(repo, work, issue.files)
    projected = calibration.projected(issue)
    print(
        f"the issue's repository ({issue.files:,} files) made in {made:.1f} s; one agent"
        f" worktree created and removed in {calibration.cycle_seconds:.2f} s (median of"
        f" {CALIBRATION_CYCLES}): {issue} without the pool would take about {projected:.0f} s"
    )
    size = choose_size(calibration, budget)
    if size == issue:
        print(f"running the issue's size: {issue}")
        return repo, issue
    print(
        f"SCALED DOWN: {issue} is over the {budget:.0f} s budget of one job on this machine;"
        f" running {size} instead (projected {calibration.projected(size):.0f} s without"
        " the pool)"
    )
    if size.files == issue.files:
        return job_repository(os.path.join(work, "scaled"), size), size
    return job_repository(work, size), size


async def run_all(
    work: str, requested: Size | None, budget: float, rounds: int, interval: float
) -> list[bool]:
    repo, size = await decide_size(work, requested, budget)
    parsed = parse_workflow(WORKFLOW, source="bench-pool.yml")
    bench = Bench(repo, work, succeeded(parsed, "parse_workflow"), size, interval)
    await bench_operations(bench)
    print(
        f"\n## A {size.items}-item job at max_parallel {PARALLEL} on a repository of"
        f" {size.files:,} files: pool vs --no-pool ({rounds} round{'s' * (rounds > 1)},"
        " run_new_job + local_env, a SQLite store each)"
    )
    runs: dict[str, list[JobRun]] = {"pool": [], "no pool": []}
    numbers = itertools.count()

    async def contender(name: str, pool: bool) -> float:
        job_id = f"{'pool' if pool else 'nopool'}-{next(numbers)}"
        run = await run_job(bench, job_id, pool=pool)
        runs[name].append(run)
        print(f"  {job_id}: {run.seconds:.1f} s (load average {load_average()})")
        return run.seconds

    await alternate_async(
        {"pool": partial(contender, "pool", True), "no pool": partial(contender, "no pool", False)},
        rounds,
    )
    print(
        "every job succeeded with every item's file on its job branch, no worktree or agent"
        " branch left"
    )
    return report(runs, checkout_bytes(repo))


def positive(kind: Callable[[str], N]) -> Callable[[str], N]:
    """An argparse type: ``kind(text)``, refused unless above 0."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, found {text!r}")
        return value

    return parse


def main() -> int:
    """Run the benchmark in a temporary directory, print a summary and return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tmpdir", default=default_tmpdir(), help="where to put repositories")
    parser.add_argument(
        "--files", type=positive(int), help="files in the repository (with --items)"
    )
    parser.add_argument("--items", type=positive(int), help="work items (with --files)")
    parser.add_argument(
        "--budget", type=positive(float), default=BUDGET, help="seconds one job may take"
    )
    parser.add_argument("--rounds", type=positive(int), default=1, help="jobs per contender")
    parser.add_argument(
        "--sample-interval",
        type=positive(float),
        default=1.0,
        help="seconds between two measures of the worktrees' size",
    )
    arguments = parser.parse_args()
    if (arguments.files is None) != (arguments.items is None):
        parser.error("--files and --items go together")
    if arguments.items is not None and arguments.items <= PARALLEL:
        parser.error(f"--items must be more than max_parallel ({PARALLEL}): slots are reused")
    requested = None if arguments.files is None else Size(arguments.files, arguments.items)
    start = time.perf_counter()
    print(f"Worktree pool: {machine()}")
    print(time.strftime("%a %b %d %H:%M %Z %Y"))
    with tempfile.TemporaryDirectory(prefix="forkmerge-bench-", dir=arguments.tmpdir) as work:
        print(f"in {work} ({file_system(work)}), load average {load_average()}")
        verdicts = trio.run(
            run_all,
            work,
            requested,
            arguments.budget,
            arguments.rounds,
            arguments.sample_interval,
        )
    print(
        f"\n{sum(verdicts)}/{len(verdicts)} goals met in {time.perf_counter() - start:.1f} s,"
        f" load average now {load_average()} (a shared machine: rerun if a MISS is close)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
