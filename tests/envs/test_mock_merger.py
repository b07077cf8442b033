"""The in-memory merger: 3-way merges by file, conflicts, nothing to merge, serialization."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from envs.mock_git import MockWorktreeManager
from envs.mock_merger import MockMerger
from envs.mock_repository import MockRepository, three_way_merge
from envs.protocols import MergeConflict, MergeOutcome, Merger, Worktree, WorktreeError

FILES = {"README.md": b"hello\n", "shared.txt": b"line\n"}
JOB = "forkmerge/job-1"


async def setup(
    merge_duration: float = 0.0,
) -> tuple[MockWorktreeManager, MockMerger, Worktree]:
    repository = MockRepository(FILES)
    wts = MockWorktreeManager(repository)
    merger = MockMerger(repository, recorder=wts.recorder, duration=merge_duration)
    job = (await wts.create_job_worktree("job-1")).unwrap()
    return wts, merger, job


async def agent_with(
    wts: MockWorktreeManager, name: str, files: dict[str, bytes | None]
) -> Worktree:
    """An agent worktree from the job branch, with ``files`` written (None: deleted), committed."""
    agent = (await wts.create_agent_worktree(name, JOB)).unwrap()
    for path, content in files.items():
        if content is None:
            wts.delete_file(agent, path)
        else:
            wts.set_file(agent, path, content)
    (await wts.commit_changes(agent, f"{name} work")).unwrap()
    return agent


def test_implements_the_protocol() -> None:
    service: Merger = MockMerger(MockRepository())  # checked by mypy
    assert isinstance(service, MockMerger)


async def test_non_conflicting_agents_from_the_same_base_both_land() -> None:
    wts, merger, _job = await setup()
    one = await agent_with(wts, "agent-1", {"a.txt": b"a"})
    two = await agent_with(wts, "agent-2", {"b.txt": b"b"})
    first = (await merger.merge(one.branch, JOB, "merge one")).unwrap()
    second = (await merger.merge(two.branch, JOB, "merge two")).unwrap()
    assert first.target_branch == second.target_branch == JOB
    assert wts.head_of(JOB) == second.commit
    assert wts.branch_files(JOB) == {**FILES, "a.txt": b"a", "b.txt": b"b"}
    log = wts.commit_log(JOB)
    merges = [commit for commit in log if len(commit.parents) == 2]
    assert [commit.message for commit in merges] == ["merge two", "merge one"]
    assert merges[0].parents == (first.commit, wts.head_of(two.branch))
    assert wts.branch_files("main") == FILES


async def test_a_fast_forwardable_merge_still_makes_a_merge_commit() -> None:
    wts, merger, _job = await setup()
    one = await agent_with(wts, "agent-1", {"a.txt": b"a"})
    base = wts.head_of(JOB)
    outcome = (await merger.merge(one.branch, JOB, "merge")).unwrap()
    assert outcome.commit is not None
    assert wts.repository.commits[outcome.commit].parents == (base, wts.head_of(one.branch))


async def test_conflicting_edits_give_one_success_and_one_conflict() -> None:
    wts, merger, _job = await setup()
    one = await agent_with(wts, "agent-1", {"shared.txt": b"one\n", "z.txt": b"z1"})
    two = await agent_with(wts, "agent-2", {"shared.txt": b"two\n", "z.txt": b"z2", "a.txt": b"a"})
    assert isinstance(await merger.merge(one.branch, JOB, "one"), Success)
    head = wts.head_of(JOB)
    conflict = await merger.merge(two.branch, JOB, "two")
    assert conflict == Failure(MergeConflict(two.branch, JOB, ("shared.txt", "z.txt")))
    assert wts.head_of(JOB) == head
    assert wts.branch_files(JOB)["shared.txt"] == b"one\n"


async def test_delete_against_modify_is_a_conflict_and_equal_changes_are_not() -> None:
    wts, merger, _job = await setup()
    deleter = await agent_with(wts, "agent-1", {"shared.txt": None, "same.txt": b"same"})
    editor = await agent_with(wts, "agent-2", {"shared.txt": b"edited", "same.txt": b"same"})
    twin = await agent_with(wts, "agent-3", {"shared.txt": None, "same.txt": b"same"})
    assert isinstance(await merger.merge(deleter.branch, JOB, "delete"), Success)
    assert await merger.merge(editor.branch, JOB, "edit") == Failure(
        MergeConflict(editor.branch, JOB, ("shared.txt",))
    )
    outcome = (await merger.merge(twin.branch, JOB, "twin")).unwrap()
    assert outcome.commit is not None
    assert wts.branch_files(JOB) == {"README.md": FILES["README.md"], "same.txt": b"same"}


async def test_nothing_to_merge() -> None:
    wts, merger, _job = await setup()
    idle = (await wts.create_agent_worktree("agent-0", JOB)).unwrap()
    head = wts.head_of(JOB)
    assert await merger.merge(idle.branch, JOB, "m") == Success(MergeOutcome(None, JOB))
    worker = await agent_with(wts, "agent-1", {"a.txt": b"a"})
    assert isinstance(await merger.merge(worker.branch, JOB, "m"), Success)
    merged = wts.head_of(JOB)
    assert merged != head
    assert await merger.merge(worker.branch, JOB, "again") == Success(MergeOutcome(None, JOB))
    assert wts.head_of(JOB) == merged


async def test_merging_after_the_target_moved_keeps_both_sides() -> None:
    wts, merger, job = await setup()
    agent = await agent_with(wts, "agent-1", {"a.txt": b"a"})
    wts.set_file(job, "setup.txt", b"s")
    (await wts.commit_changes(job, "setup")).unwrap()
    (await merger.merge(agent.branch, JOB, "m")).unwrap()
    assert {"a.txt", "setup.txt"} <= set(wts.branch_files(JOB))


async def test_unrelated_histories_merge_against_an_empty_base() -> None:
    wts, merger, _job = await setup()
    repository = wts.repository
    repository.branches["other"] = repository.commit({"x.txt": b"x"}, (), "orphan")
    (await merger.merge("other", JOB, "m")).unwrap()
    assert wts.branch_files(JOB) == {**FILES, "x.txt": b"x"}


async def test_unknown_branches_are_worktree_errors() -> None:
    _wts, merger, _job = await setup()
    assert await merger.merge("nope", JOB, "m") == Failure(
        WorktreeError("merge", "no branch named 'nope'")
    )
    assert await merger.merge(JOB, "gone", "m") == Failure(
        WorktreeError("merge", "no branch named 'gone'")
    )


async def test_injected_merge_failure() -> None:
    wts, merger, _job = await setup()
    agent = await agent_with(wts, "agent-1", {"a.txt": b"a"})
    head = wts.head_of(JOB)
    merger.fail(source_branch=agent.branch, times=1)
    failed = await merger.merge(agent.branch, JOB, "m")
    assert failed == Failure(WorktreeError("merge", f"injected failure ({agent.branch})"))
    assert wts.head_of(JOB) == head
    assert isinstance(await merger.merge(agent.branch, JOB, "m"), Success)
    with pytest.raises(ValueError, match="`duration` must be non-negative"):
        MockMerger(wts.repository, duration=-1)


async def test_merges_are_serialized_and_a_merge_under_way_completes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wts, merger, _job = await setup(merge_duration=1.0)
    agents = [await agent_with(wts, f"agent-{i}", {f"f{i}.txt": b"x"}) for i in range(3)]
    start = trio.current_time()
    ends: list[float] = []

    async def merge(agent: Worktree) -> None:
        (await merger.merge(agent.branch, JOB, agent.name)).unwrap()
        ends.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        for agent in agents:
            nursery.start_soon(merge, agent)
    assert sorted(ends) == [1.0, 2.0, 3.0]
    assert {"f0.txt", "f1.txt", "f2.txt"} <= set(wts.branch_files(JOB))

    late = await agent_with(wts, "agent-9", {"late.txt": b"l"})
    with trio.move_on_after(0.5):
        await merger.merge(late.branch, JOB, "late")
    assert "late.txt" in wts.branch_files(JOB)
    assert wts.recorder.methods("merger") == ["merger.merge"] * 4


snapshots = st.dictionaries(st.sampled_from(["x", "y", "z"]), st.sampled_from([b"a", b"b", b"c"]))


@given(snapshots, snapshots, snapshots)
def test_three_way_merge_laws(
    base: dict[str, bytes], ours: dict[str, bytes], theirs: dict[str, bytes]
) -> None:
    merged, conflicts = three_way_merge(base, ours, theirs)
    swapped, swapped_conflicts = three_way_merge(base, theirs, ours)
    assert conflicts == swapped_conflicts == sorted(conflicts)
    if not conflicts:
        assert merged == swapped
    assert three_way_merge(base, base, theirs) == (theirs, [])
    assert three_way_merge(base, ours, base) == (ours, [])
    assert three_way_merge(base, ours, ours) == (ours, [])
    for path in set(ours) | set(theirs):
        if path not in conflicts and ours.get(path) == theirs.get(path):
            assert merged.get(path) == ours.get(path)
