"""The per-agent git cycle through forkmerge's services against the git CLI, and a 200-item job.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/worktree_cycle.py``; ``--help``).

1. **One agent's cycle** on a generated repository of 5,000 small files in nested
   directories, one commit (packed, as in a cloned repository; ``--loose-objects`` leaves
   the objects loose, as pygit2 wrote them): create a worktree and a branch from the job
   branch (the checkout), change one file and commit, merge the agent branch into the job
   branch, remove the worktree and the branch. forkmerge's services (``GitWorktreeManager``
   and ``GitMerger`` under trio) and the ``git`` command line take turns in the same
   repository: one warm-up cycle each, then ``ROUNDS`` rounds, the order rotating. Each
   cycle changes a different file, and is checked afterwards (untimed): its change is on
   its job branch, its worktree and branch are gone.
2. **A 200-item job at max_parallel 8** on a smaller repository (500 files): forkmerge's
   ``run_workflow`` in ``local_env``, each agent writing one file with a ``shell:`` step,
   against a bash script doing the same cycle with the git CLI, 8 agents at a time
   (``xargs -P 8``; merges into the job's worktree serialised with ``flock``).

Goals are reported as PASS/MISS lines, never asserted: the script exits 0 either way.
Repositories are created under ``--tmpdir`` (default ``/dev/shm`` if usable, else the
system's temporary directory) and deleted at the end, whatever happens.
Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from importlib.metadata import version
from typing import TypeVar, final

import attrs
import pygit2
import trio
from _common import (
    Samples,
    alternate_async,
    cpu_model,
    expect,
    file_system,
    load_average,
    print_table,
    verdict,
)
from returns.result import Result, Success

from envs.demo_repository import create_repository
from envs.git_merger import GitMerger
from envs.git_worktrees import GitWorktreeManager
from envs.local import local_env, state_layout
from envs.protocols import Worktree
from phases.jobs import new_job_record
from phases.workflow import run_workflow
from pure.workflow import Workflow
from pure.workflow_parsing import parse_workflow

T = TypeVar("T")

CYCLE_FILES = 5_000
ROUNDS = 10
WARM_UP_ROUNDS = 1
JOB_FILES = 500
JOB_ITEMS = 200
JOB_PARALLEL = 8
JOB_ROUNDS = 1  # one job each: a round takes about a minute here
MS = 1_000.0

JOB_WORKFLOW = f"""\
name: bench-job
map:
  input: items.json
  max_parallel: {JOB_PARALLEL}
  agent_template:
    - shell: "printf '%s' ${{item.text}} > out/${{item.name}}.txt"
"""

# The same job with the git CLI: a job worktree, then per item a worktree and branch from
# the job branch, the file, a commit, a --no-ff merge in the job's worktree (one at a
# time: git cannot merge twice at once in one worktree), removal of worktree and branch.
BASELINE_SCRIPT = r"""
set -euo pipefail
repo=$1 work=$2 job=$3 count=$4 parallel=$5
git -C "$repo" worktree add -q -b "$job" "$work/job" main
agent() {
    set -euo pipefail
    local name branch tree
    name=$(printf 'item-%03d' "$1")
    branch="bench-agents/$job/$name"
    tree="$work/agents/$name"
    git -C "$repo" worktree add -q -b "$branch" "$tree" "$job"
    printf '%s' "agent $1 was here" > "$tree/out/$name.txt"
    git -C "$tree" add -A
    git -C "$tree" commit -q -m "agent $name"
    flock "$work/merge.lock" git -C "$work/job" merge --no-ff -q -m "merge $name" "$branch"
    git -C "$repo" worktree remove --force "$tree"
    git -C "$repo" branch -D -q "$branch"
}
export -f agent
export repo work job
seq 0 $((count - 1)) | xargs -P "$parallel" -I{} bash -c 'agent "$1"' agent {}
git -C "$repo" worktree remove --force "$work/job"
"""


# -- the machine, the repositories, the checks ----------------------------------------------


def git(*args: str) -> str:
    """Run ``git args``; a failure stops the benchmark with git's own message."""
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def machine() -> str:
    """CPUs, CPU model, Python, git, pygit2 and libgit2: what the numbers were measured on."""
    model = cpu_model()
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]},"
        f" {git('--version').strip()}, pygit2 {version('pygit2')}"
        f" (libgit2 {pygit2.LIBGIT2_VERSION}), trio {trio.__version__}"
    )



def relative_file(index: int) -> str:
    return f"src/pkg{index % 10}/mod{index // 10 % 10}/file{index:05d}.txt"


def generated_repository(path: str, count: int, extra: Mapping[str, str], *, packed: bool) -> str:
    """A repository of ``count`` small text files in 10 x 10 directories (plus ``extra``),
    one commit on ``main``, its objects packed or loose."""
    files = {
        relative_file(index): "".join(f"line {line} of file {index}\n" for line in range(5))
        for index in range(count)
    }
    repo = create_repository(path, {**files, **extra})
    if packed:
        git("-C", repo, "repack", "-a", "-d", "-q")
    return repo


def succeeded(result: Result[T, object], what: str) -> T:
    """The value of a ``Success``; a ``Failure`` here is a bug in the benchmark or in forkmerge."""
    if not isinstance(result, Success):
        raise RuntimeError(f"{what} failed: {result}")
    value: T = result.unwrap()
    return value


def check_branch(repo: pygit2.Repository, branch: str, files: Mapping[str, str]) -> pygit2.Commit:
    """Check that ``branch`` holds ``files``; its head commit."""
    head = repo.branches.local[branch].peel(pygit2.Commit)
    for relative, content in files.items():
        blob = repo[head.tree[relative].id]
        assert isinstance(blob, pygit2.Blob)
        expect(blob.data.decode(), content, f"{relative} on {branch}")
    return head


# -- 1. one agent's cycle ------------------------------------------------------------------


@attrs.frozen
class CycleTimes:
    """The seconds each phase of one agent's cycle took."""

    checkout: float
    commit: float
    merge: float
    remove: float

    @classmethod
    def between(cls, *instants: float) -> CycleTimes:
        """The phases' times from the five instants that start and end them."""
        return cls(*(end - start for start, end in itertools.pairwise(instants)))

    @property
    def rest(self) -> float:
        """Everything but the checkout: commit, merge and removal."""
        return self.commit + self.merge + self.remove

    @property
    def total(self) -> float:
        return self.checkout + self.rest


MEASURES: dict[str, Callable[[CycleTimes], float]] = {
    "1. worktree + branch (checkout)": lambda times: times.checkout,
    "2. change one file + commit": lambda times: times.commit,
    "3. merge into the job branch": lambda times: times.merge,
    "4. remove worktree + branch": lambda times: times.remove,
    "everything but the checkout": lambda times: times.rest,
    "whole cycle": lambda times: times.total,
}

Cycle = Callable[[int], Awaitable[CycleTimes]]


def change(tree: str, index: int) -> dict[str, str]:
    """Rewrite one file in ``tree``, a different one for each ``index``; {path: content}."""
    relative = relative_file(index * 37 % CYCLE_FILES)  # spread over the directories
    content = f"changed by cycle {index}\n"
    with open(os.path.join(tree, relative), "w", encoding="utf-8") as file:
        file.write(content)
    return {relative: content}


def check_cycle(repo_path: str, job_branch: str, changed: Mapping[str, str], agent: str) -> None:
    """The change is on the job branch, in a merge commit; the agent's branch is gone."""
    repo = pygit2.Repository(repo_path)
    head = check_branch(repo, job_branch, changed)
    expect(len(head.parent_ids), 2, f"parents of the head of {job_branch}")
    expect(agent in repo.branches.local, False, f"{agent} left behind")


@final
class ForkmergeCycle:
    """The cycle through forkmerge's services, on the job branch of ``job``."""

    def __init__(self, repo: str, manager: GitWorktreeManager, job: Worktree) -> None:
        self._repo, self._manager, self._job = repo, manager, job
        self._merger = GitMerger(repo)

    async def __call__(self, index: int) -> CycleTimes:
        manager, job = self._manager, self._job
        gc.collect()
        start = time.perf_counter()
        created = await manager.create_agent_worktree(f"agent-{index:04d}", job.branch)
        worktree = succeeded(created, "create_agent_worktree")
        checked_out = time.perf_counter()
        changed = change(worktree.path, index)
        succeeded(await manager.commit_changes(worktree, f"cycle {index}"), "commit_changes")
        committed = time.perf_counter()
        merged = await self._merger.merge(worktree.branch, job.branch, f"merge cycle {index}")
        succeeded(merged, "merge")
        merged_at = time.perf_counter()
        succeeded(await manager.remove_worktree(worktree), "remove_worktree")
        removed = time.perf_counter()
        check_cycle(self._repo, job.branch, changed, worktree.branch)
        expect(os.path.lexists(worktree.path), False, f"{worktree.path} left behind")
        return CycleTimes.between(start, checked_out, committed, merged_at, removed)


@final
class CliCycle:
    """The same cycle with the git CLI; the job branch is checked out in its own worktree."""

    def __init__(self, repo: str, work: str, job_branch: str) -> None:
        self._repo, self._job_branch = repo, job_branch
        self._agents = os.path.join(work, "cli-agents")
        self._job_tree = os.path.join(work, "cli-job")
        git("-C", repo, "worktree", "add", "-q", "-b", job_branch, self._job_tree, "main")

    async def __call__(self, index: int) -> CycleTimes:
        repo = self._repo
        branch = f"cli-agents/agent-{index:04d}"
        tree = os.path.join(self._agents, f"agent-{index:04d}")
        gc.collect()
        start = time.perf_counter()
        git("-C", repo, "worktree", "add", "-q", "-b", branch, tree, self._job_branch)
        checked_out = time.perf_counter()
        changed = change(tree, index)
        git("-C", tree, "add", "-A")
        git("-C", tree, "commit", "-q", "-m", f"cycle {index}")
        committed = time.perf_counter()
        git("-C", self._job_tree, "merge", "--no-ff", "-q", "-m", f"merge cycle {index}", branch)
        merged_at = time.perf_counter()
        git("-C", repo, "worktree", "remove", "--force", tree)
        git("-C", repo, "branch", "-D", "-q", branch)
        removed = time.perf_counter()
        check_cycle(repo, self._job_branch, changed, branch)
        expect(os.path.lexists(tree), False, f"{tree} left behind")
        return CycleTimes.between(start, checked_out, committed, merged_at, removed)


async def alternate_cycles(
    cycles: dict[str, Cycle], warm_up: int, rounds: int
) -> dict[str, dict[str, Samples]]:
    """Warm up, then run every contender's cycle once per round, rotating the order.

    The samples of each contender, one per measure of :data:`MEASURES`.
    """
    indices = itertools.count()
    for _ in range(warm_up):
        for cycle in cycles.values():
            await cycle(next(indices))
    recorded: dict[str, list[CycleTimes]] = {name: [] for name in cycles}

    async def measured(name: str) -> float:
        times = await cycles[name](next(indices))
        recorded[name].append(times)
        return times.total

    await alternate_async({name: partial(measured, name) for name in cycles}, rounds)
    return {
        name: {
            measure: Samples(measure, tuple(pick(times) for times in recorded[name]))
            for measure, pick in MEASURES.items()
        }
        for name in cycles
    }


async def bench_cycle(work: str, packed: bool) -> list[bool]:
    print(
        f"\n## 1. One agent's cycle on a repository of {CYCLE_FILES:,} files"
        f" ({'packed' if packed else 'loose objects'}): forkmerge's services vs the git CLI"
        f" ({WARM_UP_ROUNDS} warm-up, {ROUNDS} rounds)"
    )
    start = time.perf_counter()
    repo = generated_repository(os.path.join(work, "cycle-repo"), CYCLE_FILES, {}, packed=packed)
    manager = GitWorktreeManager(repo)
    job = succeeded(await manager.create_job_worktree("cycle"), "create_job_worktree")
    cycles: dict[str, Cycle] = {
        "forkmerge": ForkmergeCycle(repo, manager, job),
        "git CLI": CliCycle(repo, work, "cli-job"),
    }
    print(f"(repository and both job worktrees set up in {time.perf_counter() - start:.1f} s)")
    samples = await alternate_cycles(cycles, WARM_UP_ROUNDS, ROUNDS)
    ours, theirs = samples["forkmerge"], samples["git CLI"]
    rows = [
        [
            measure,
            f"{ours[measure].median * MS:.1f}",
            f"{theirs[measure].median * MS:.1f}",
            f"{ours[measure].ratio_to(theirs[measure]):.2f}x",
            f"{ours[measure].best_ratio_to(theirs[measure]):.2f}x",
        ]
        for measure in MEASURES
    ]
    print_table(
        ["phase (median)", "forkmerge ms", "git CLI ms", "forkmerge/CLI", "best/best"], rows
    )
    rest, whole = ours["everything but the checkout"], ours["whole cycle"]
    cli_rest, cli_whole = theirs["everything but the checkout"], theirs["whole cycle"]
    return [
        verdict(
            rest.ratio_to(cli_rest) <= 1 / 3,
            "everything but the checkout (commit, merge, remove) 3x cheaper than the CLI's",
            f"the CLI's takes {1 / rest.ratio_to(cli_rest):.2f}x forkmerge's (forkmerge/CLI"
            f" {rest.ratios_to(cli_rest)}; {rest.median * MS:.1f} vs"
            f" {cli_rest.median * MS:.1f} ms)",
        ),
        verdict(
            whole.ratio_to(cli_whole) <= 1.0,
            "the whole cycle no slower than the CLI's (forkmerge/CLI <= 1.0)",
            f"{whole.ratios_to(cli_whole)}; {whole.median * MS:.1f} vs"
            f" {cli_whole.median * MS:.1f} ms",
        ),
    ]


# -- 2. a whole job ------------------------------------------------------------------------


def job_items() -> list[dict[str, str]]:
    return [{"name": f"item-{n:03d}", "text": f"agent {n} was here"} for n in range(JOB_ITEMS)]


def check_job(repo_path: str, job_branch: str, agent_prefix: str) -> None:
    """Every item's file is on the job branch; no agent branch and no worktree is left."""
    repo = pygit2.Repository(repo_path)
    check_branch(repo, job_branch, {f"out/{it['name']}.txt": it["text"] for it in job_items()})
    left = [name for name in repo.branches.local if name.startswith(agent_prefix)]
    expect(left, [], "agent branches left behind")
    expect(repo.list_worktrees(), [], "worktrees left behind")


async def forkmerge_job(repo: str, workflow: Workflow, job_id: str) -> float:
    """Seconds ``run_workflow`` took for the whole job in ``local_env``; checked afterwards.

    As ``python -m phases run`` does, the job's record goes into the repository's SQLite
    job store first (untimed), and the job records every step there.
    """
    layout = state_layout(repo)
    record = new_job_record(
        workflow,
        job_id=job_id,
        workflow_path=os.path.join(repo, "bench-job.yml"),
        workflow_text=JOB_WORKFLOW,
        repository=layout.repository,
        options={"max_parallel": JOB_PARALLEL},
        now=time.time(),
    )
    effect = run_workflow(workflow, job_id=job_id, variables={}, max_parallel=JOB_PARALLEL)
    with layout.open_store() as store:
        await store.create_job(record)
        env = local_env(repo, store=store, worktrees_dir=layout.worktrees)
        gc.collect()
        start = time.perf_counter()
        result = await effect.run(env)
        seconds = time.perf_counter() - start
    job = succeeded(result, "run_workflow")
    expect((job.status, job.map.successful), ("succeeded", JOB_ITEMS), f"job {job_id}")
    check_job(repo, job.job_branch, f"forkmerge-agents/{job_id}/")
    return seconds


async def baseline_job(repo: str, work: str, job_id: str) -> float:
    """Seconds the bash + xargs + git CLI baseline took for the same job; checked afterwards."""
    script = os.path.join(work, "baseline.sh")
    with open(script, "w", encoding="utf-8") as file:
        file.write(BASELINE_SCRIPT)
    scratch = tempfile.mkdtemp(prefix=f"{job_id}-", dir=work)
    argv = ["bash", script, repo, scratch, job_id, str(JOB_ITEMS), str(JOB_PARALLEL)]
    gc.collect()
    start = time.perf_counter()
    done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the baseline failed ({done.returncode}): {done.stderr.decode()}")
    check_job(repo, job_id, f"bench-agents/{job_id}/")
    return seconds


async def bench_job(work: str, packed: bool) -> None:
    print(
        f"\n## 2. A {JOB_ITEMS}-item job at max_parallel {JOB_PARALLEL} on a repository of"
        f" {JOB_FILES} files: run_workflow + local_env vs bash + xargs -P {JOB_PARALLEL}"
        " + git CLI"
    )
    extra = {"items.json": json.dumps(job_items()), "out/.keep": ""}
    repo = generated_repository(os.path.join(work, "job-repo"), JOB_FILES, extra, packed=packed)
    workflow = succeeded(parse_workflow(JOB_WORKFLOW, source="bench-job.yml"), "parse_workflow")
    runs = itertools.count()
    samples = await alternate_async(
        {
            "forkmerge (run_workflow + local_env)": lambda: forkmerge_job(
                repo, workflow, f"fm-{next(runs)}"
            ),
            f"baseline (bash, xargs -P {JOB_PARALLEL}, git CLI)": lambda: baseline_job(
                repo, work, f"cli-{next(runs)}"
            ),
        },
        JOB_ROUNDS,
    )
    rows = [
        [name, f"{one.median:.2f} s", f"{one.median / JOB_ITEMS * MS:.1f} ms"]
        for name, one in samples.items()
    ]
    print_table(["contender", "total", "per item"], rows)
    ours, base = samples.values()
    print(
        "every item's file was on each job branch, no worktree or agent branch left;"
        f" forkmerge/baseline {ours.ratios_to(base)} (reported, no goal)"
    )


# -- the whole script -----------------------------------------------------------------------


def default_tmpdir() -> str:
    """``/dev/shm`` if usable (checkouts then cost CPU, not disk), else the system's tmp."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


async def run_all(work: str, packed: bool) -> list[bool]:
    verdicts = await bench_cycle(work, packed)
    await bench_job(work, packed)
    return verdicts


def main() -> int:
    """Run both sections in a temporary directory, print a summary and return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tmpdir", default=default_tmpdir(), help="where to put repositories")
    parser.add_argument(
        "--loose-objects",
        action="store_true",
        help="leave the generated repositories' objects loose instead of packing them",
    )
    arguments = parser.parse_args()
    start = time.perf_counter()
    print(f"Worktree cycle: {machine()}")
    with tempfile.TemporaryDirectory(prefix="forkmerge-bench-", dir=arguments.tmpdir) as work:
        print(
            f"in {work} ({file_system(work)}), load average {load_average()};"
            " ratios: median of the per-round ratios; best/best: best time over best time"
        )
        verdicts = trio.run(run_all, work, not arguments.loose_objects)
    print(
        f"\n{sum(verdicts)}/{len(verdicts)} goals met in {time.perf_counter() - start:.1f} s,"
        f" load average now {load_average()} (a shared machine: rerun if a MISS is close)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
