"""The in-memory worktree manager: branches, commits, worktrees, path rules, failure injection."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from returns.result import Failure, Success

from envs.mock_git import MockWorktreeManager
from envs.mock_repository import MockRepository, is_ignored, normalize_relative_path
from envs.protocols import Worktree, WorktreeError, WorktreeManager

FILES = {"README.md": b"hello\n", "src/a.py": b"a = 1\n"}


def manager(files: dict[str, bytes] | None = None) -> MockWorktreeManager:
    return MockWorktreeManager(MockRepository(FILES if files is None else files))


def test_implements_the_protocol() -> None:
    service: WorktreeManager = manager()  # checked by mypy
    assert isinstance(service, MockWorktreeManager)


async def test_job_worktree_starts_at_main_and_is_reused() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    main = wts.head_of("main")
    assert job == Worktree("job-1", "/mock/worktrees/fm-job-1", "forkmerge/job-1", main)
    assert wts.head_of("forkmerge/job-1") == main
    assert wts.files(job) == FILES
    assert await wts.create_job_worktree("job-1") == Success(job)
    assert wts.active_worktrees() == [job]


async def test_resumed_job_checks_out_the_existing_branch() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    wts.set_file(job, "setup.txt", b"done")
    commit = (await wts.commit_changes(job, "setup")).unwrap()
    assert await wts.remove_worktree(job, delete_branch=False) == Success(None)
    assert "forkmerge/job-1" in wts.branches()

    again = (await wts.create_job_worktree("job-1", base="main")).unwrap()
    assert again.base_commit == commit
    assert wts.files(again)["setup.txt"] == b"done"


async def test_job_base_may_name_a_commit_but_not_nothing() -> None:
    wts = manager()
    first = wts.head_of("main")
    job = (await wts.create_job_worktree("job-1", base=first)).unwrap()
    assert job.base_commit == first
    result = await wts.create_job_worktree("job-2", base="no-such-branch")
    assert result == Failure(
        WorktreeError("create_job_worktree", "no branch or commit named 'no-such-branch'")
    )
    assert "forkmerge/job-2" not in wts.branches()


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-x", "x.lock", "a..b", "a b", "x" * 101])
async def test_unsafe_names_are_refused(name: str) -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    agent = await wts.create_agent_worktree(name, job.branch)
    assert isinstance(agent, Failure)
    assert agent.failure().operation == "create_agent_worktree"
    assert isinstance(await wts.create_job_worktree(name), Failure)
    assert wts.active_worktrees() == [job]


async def test_agent_worktree_starts_from_the_parents_current_head() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    wts.set_file(job, "setup.txt", b"x")
    moved = (await wts.commit_changes(job, "setup")).unwrap()
    assert moved is not None
    agent = (await wts.create_agent_worktree("agent-0000-a", job.branch)).unwrap()
    assert agent == Worktree(
        "agent-0000-a",
        "/mock/worktrees/fm-job-1-agent-0000-a",
        "forkmerge-agents/job-1/agent-0000-a",
        moved,
    )
    assert wts.files(agent)["setup.txt"] == b"x"


async def test_agent_worktree_needs_an_existing_job_branch_and_a_fresh_name() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    not_job = await wts.create_agent_worktree("agent-0", "main")
    assert isinstance(not_job, Failure)
    assert "forkmerge/<job id>" in not_job.failure().message
    missing = await wts.create_agent_worktree("agent-0", "forkmerge/job-9")
    assert missing == Failure(
        WorktreeError("create_agent_worktree", "no branch named 'forkmerge/job-9'")
    )
    (await wts.create_agent_worktree("agent-0", job.branch)).unwrap()
    twice = await wts.create_agent_worktree("agent-0", job.branch)
    assert isinstance(twice, Failure)
    assert "already exists" in twice.failure().message


async def test_a_leftover_agent_branch_starts_over_from_the_parent() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    agent = (await wts.create_agent_worktree("agent-0", job.branch)).unwrap()
    wts.set_file(agent, "half.txt", b"interrupted")
    (await wts.commit_changes(agent, "half")).unwrap()
    await wts.remove_worktree(agent, delete_branch=False)
    again = (await wts.create_agent_worktree("agent-0", job.branch)).unwrap()
    assert again.base_commit == wts.head_of(job.branch)
    assert "half.txt" not in wts.files(again)


async def test_commit_records_added_modified_and_deleted_files() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    agent = (await wts.create_agent_worktree("agent-0", job.branch)).unwrap()
    wts.set_file(agent, "new/b.txt", "b")
    wts.set_file(agent, "src/a.py", b"a = 2\n")
    wts.delete_file(agent, "README.md")
    commit = (await wts.commit_changes(agent, "agent work")).unwrap()
    assert commit is not None and len(commit) == 40
    assert wts.head_of(agent.branch) == commit
    assert wts.branch_files(agent.branch) == {"new/b.txt": b"b", "src/a.py": b"a = 2\n"}
    log = wts.commit_log(agent.branch)
    assert [c.message for c in log] == ["agent work", "initial commit"]
    assert log[0].parents == (agent.base_commit,)
    assert wts.branch_files(job.branch) == FILES
    assert wts.branch_files("main") == FILES


async def test_commit_of_an_unchanged_worktree_is_none() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    assert await wts.commit_changes(job, "nothing") == Success(None)
    wts.set_file(job, "README.md", b"changed")
    wts.set_file(job, "README.md", FILES["README.md"])
    assert await wts.commit_changes(job, "nothing") == Success(None)
    assert len(wts.commit_log(job.branch)) == 1


async def test_commit_honours_gitignore_for_untracked_files_only() -> None:
    files = {**FILES, ".gitignore": b"*.log\nbuild/\n", "keep.log": b"tracked"}
    wts = manager(files)
    job = (await wts.create_job_worktree("job-1")).unwrap()
    wts.set_file(job, "debug.log", b"noise")
    wts.set_file(job, "build/out.bin", b"\0")
    wts.set_file(job, "keep.log", b"tracked, changed")
    commit = (await wts.commit_changes(job, "work")).unwrap()
    assert commit is not None
    committed = wts.branch_files(job.branch)
    assert committed["keep.log"] == b"tracked, changed"
    assert "debug.log" not in committed and "build/out.bin" not in committed
    # The ignored files stay in the worktree, and alone they are nothing to commit.
    wts.set_file(job, "more.log", b"noise")
    assert await wts.commit_changes(job, "again") == Success(None)
    assert wts.files(job)["debug.log"] == b"noise"


@pytest.mark.parametrize(
    ("gitignore", "path", "ignored"),
    [
        ("*.log", "a.log", True),
        ("*.log", "deep/down/a.log", True),
        ("*.log\n!keep.log", "keep.log", False),
        ("# comment\n\n*.tmp", "x.tmp", True),
        ("build/", "build/x", True),
        ("build/", "build", False),
        ("/top.txt", "top.txt", True),
        ("/top.txt", "sub/top.txt", False),
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "docs/sub/a.md", False),
        ("**/cache", "a/b/cache/x", True),
        ("logs/**", "logs/a/b", True),
        ("a/**/z", "a/b/c/z", True),
        ("file?.txt", "file1.txt", True),
        ("[ab].txt", "b.txt", True),
        ("[!ab].txt", "b.txt", False),
        ("build/\n!build/keep", "build/keep", True),  # a file in an ignored dir stays ignored
        ("", "x", False),
        ("\\#literal", "#literal", True),
        ("a**b", "a/b", False),  # ** not between slashes is a plain *
    ],
)
def test_gitignore_patterns(gitignore: str, path: str, ignored: bool) -> None:
    assert is_ignored(path, {".gitignore": gitignore.encode()}) is ignored


def test_nested_gitignore_applies_below_its_directory_and_wins() -> None:
    files = {".gitignore": b"*.txt\n", "sub/.gitignore": b"!*.txt\n/only-here\n"}
    assert is_ignored("a.txt", files)
    assert not is_ignored("sub/a.txt", files)
    assert is_ignored("sub/only-here", files)
    assert not is_ignored("only-here", files)


async def test_remove_deletes_worktree_and_branch_and_is_idempotent() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    agent = (await wts.create_agent_worktree("agent-0", job.branch)).unwrap()
    assert await wts.remove_worktree(agent) == Success(None)
    assert wts.active_worktrees() == [job]
    assert agent.branch not in wts.branches()
    assert await wts.remove_worktree(agent) == Success(None)
    with pytest.raises(KeyError, match="no active mock worktree"):
        wts.files(agent)


async def test_remove_never_deletes_a_branch_forkmerge_did_not_create() -> None:
    wts = manager()
    stranger = Worktree("user", "/home/user/repo", "main", wts.head_of("main"))
    assert await wts.remove_worktree(stranger) == Success(None)
    assert "main" in wts.branches()


async def test_operations_on_a_removed_worktree_fail() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    agent = (await wts.create_agent_worktree("agent-0", job.branch)).unwrap()
    await wts.remove_worktree(agent)
    missing = f"no worktree 'agent-0' at {agent.path}"
    assert await wts.commit_changes(agent, "m") == Failure(WorktreeError("commit_changes", missing))
    assert await wts.sync_worktree(agent) == Failure(WorktreeError("sync_worktree", missing))
    assert await wts.read_file(agent, "README.md") == Failure(WorktreeError("read_file", missing))
    written = await wts.write_file(agent, "x", b"", create_dirs=True)
    assert written == Failure(WorktreeError("write_file", missing))
    assert await wts.head_commit(agent) == Failure(
        WorktreeError("head_commit", f"no branch named {agent.branch!r}")
    )


async def test_sync_resets_tracked_files_to_the_head_and_keeps_untracked_ones() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    before = wts.files(job)
    # Another actor (the merger) moves the job branch; the job worktree is stale.
    repository = wts.repository
    head = wts.head_of(job.branch)
    moved = repository.commit({**before, "merged.txt": b"m"}, (head,), "merge")
    repository.branches[job.branch] = moved
    wts.set_file(job, "README.md", b"local edit")
    wts.set_file(job, "scratch.txt", b"untracked")
    assert await wts.head_commit(job) == Success(moved)
    assert wts.files(job).get("merged.txt") is None

    assert await wts.sync_worktree(job) == Success(None)
    assert wts.files(job) == {**before, "merged.txt": b"m", "scratch.txt": b"untracked"}
    assert await wts.commit_changes(job, "scratch") != Success(None)
    assert wts.branch_files(job.branch)["merged.txt"] == b"m"


async def test_write_and_read_files_inside_the_worktree() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    assert await wts.write_file(job, "src/./b.py", b"b", create_dirs=False) == Success(None)
    assert await wts.read_file(job, "src/b.py") == Success(b"b")
    assert await wts.write_file(job, "out/deep/c.txt", b"c", create_dirs=True) == Success(None)
    assert wts.files(job)["out/deep/c.txt"] == b"c"
    assert await wts.read_file(job, "a/../README.md") == Success(FILES["README.md"])


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "a/../../x", "", ".", "a\0b"])
async def test_paths_leaving_the_worktree_are_refused(path: str) -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    written = await wts.write_file(job, path, b"x", create_dirs=True)
    assert isinstance(written, Failure)
    assert written.failure().operation == "write_file"
    assert "must stay inside the worktree" in written.failure().message
    read = await wts.read_file(job, path)
    assert isinstance(read, Failure) and "must stay inside" in read.failure().message
    assert wts.files(job) == FILES
    assert normalize_relative_path(path) is None


async def test_write_needs_directories_unless_asked_to_create_them() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    no_dir = await wts.write_file(job, "new/x.txt", b"x", create_dirs=False)
    assert no_dir == Failure(
        WorktreeError("write_file", f"no directory new in {job.path} (create_dirs is off)")
    )
    file_as_dir = await wts.write_file(job, "README.md/x", b"x", create_dirs=True)
    assert isinstance(file_as_dir, Failure) and "is a file" in file_as_dir.failure().message
    onto_dir = await wts.write_file(job, "src", b"x", create_dirs=True)
    assert isinstance(onto_dir, Failure) and "is a directory" in onto_dir.failure().message
    missing = await wts.read_file(job, "nope.txt")
    assert missing == Failure(
        WorktreeError("read_file", f"no file nope.txt in worktree {job.path}")
    )


async def test_helpers_refuse_unknown_worktrees_and_bad_paths() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    assert wts.worktree_at(job.path) == job
    with pytest.raises(KeyError):
        wts.set_file("/nowhere", "x", b"x")
    with pytest.raises(ValueError, match="must stay inside"):
        wts.set_file(job, "../x", b"x")
    with pytest.raises(ValueError, match="must stay inside"):
        wts.delete_file(job, "/x")
    with pytest.raises(KeyError):
        wts.delete_file(job, "absent.txt")
    with pytest.raises(ValueError, match="not a safe name"):
        wts.add_job_worktree("../job")


async def test_injected_failure_of_a_named_worktree_changes_nothing() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    wts.fail("create_agent_worktree", name="agent-1")
    assert (await wts.create_agent_worktree("agent-0", job.branch)).unwrap().name == "agent-0"
    failed = await wts.create_agent_worktree("agent-1", job.branch)
    assert failed == Failure(WorktreeError("create_agent_worktree", "injected failure (agent-1)"))
    assert failed == await wts.create_agent_worktree("agent-1", job.branch)  # every time
    assert [wt.name for wt in wts.active_worktrees()] == ["job-1", "agent-0"]
    assert "forkmerge-agents/job-1/agent-1" not in wts.branches()


async def test_injected_failure_on_the_nth_call_and_a_limited_number_of_times() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    boom = WorktreeError("create_agent_worktree", "disk full")
    wts.fail("create_agent_worktree", nth=2, error=boom)
    results = [await wts.create_agent_worktree(f"agent-{i}", job.branch) for i in range(3)]
    assert [isinstance(r, Success) for r in results] == [True, False, True]
    assert results[1] == Failure(boom)

    agent = wts.worktree_at("/mock/worktrees/fm-job-1-agent-0")
    wts.fail("remove_worktree", name="agent-0", times=1)
    assert isinstance(await wts.remove_worktree(agent), Failure)
    assert agent in wts.active_worktrees()
    assert await wts.remove_worktree(agent) == Success(None)
    assert agent not in wts.active_worktrees()


def test_injection_rejects_unknown_operations_and_counts() -> None:
    wts = manager()
    with pytest.raises(ValueError, match="`operation` must be one of"):
        wts.fail("create_worktree")
    with pytest.raises(ValueError, match="`nth` counts calls from 1"):
        wts.fail("commit_changes", nth=0)
    with pytest.raises(ValueError, match="`times` must be at least 1"):
        wts.fail("commit_changes", times=0)
    with pytest.raises(ValueError, match="unknown operations"):
        MockWorktreeManager(latency={"checkout": 1.0})


async def test_injected_write_failure_and_a_branch_deleted_underneath() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    wts.fail("write_file", name="job-1", times=1)
    written = await wts.write_file(job, "x.txt", b"x", create_dirs=False)
    assert written == Failure(WorktreeError("write_file", "injected failure (job-1)"))
    assert "x.txt" not in wts.files(job)
    del wts.repository.branches[job.branch]
    assert await wts.commit_changes(job, "m") == Failure(
        WorktreeError("commit_changes", "no branch named 'forkmerge/job-1'")
    )


async def test_latency_elapses_on_trios_clock_and_is_shielded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wts = MockWorktreeManager(latency={"create_job_worktree": 2.0})
    start = trio.current_time()
    with trio.move_on_after(0.5) as scope:
        created = await wts.create_job_worktree("job-1")
        # The operation finished although its caller was cancelled meanwhile.
        assert isinstance(created, Success)
        await trio.sleep(0)
    assert scope.cancelled_caught
    assert trio.current_time() - start == pytest.approx(2.0)
    assert [wt.name for wt in wts.active_worktrees()] == ["job-1"]


async def test_a_cancelled_call_does_nothing() -> None:
    wts = manager()
    with trio.CancelScope() as scope:
        scope.cancel()
        await wts.create_job_worktree("job-1")
    assert wts.active_worktrees() == []
    assert wts.recorder.methods() == ["worktrees.create_job_worktree"]


async def test_calls_are_recorded_with_every_argument() -> None:
    wts = manager()
    job = (await wts.create_job_worktree("job-1")).unwrap()
    await wts.write_file(job, "a.txt", b"a", create_dirs=False)
    await wts.commit_changes(job, "msg")
    await wts.remove_worktree(job, delete_branch=False)
    assert wts.recorder.calls == [
        ("worktrees", "create_job_worktree", ("job-1", None)),
        ("worktrees", "write_file", (job, "a.txt", b"a", False, 0o644)),
        ("worktrees", "commit_changes", (job, "msg")),
        ("worktrees", "remove_worktree", (job, False)),
    ]
