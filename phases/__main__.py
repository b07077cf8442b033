"""``python -m phases`` (also installed as ``forkmerge``): the thin command line.

Exit codes: 0 every item succeeded; 1 the job ran but something failed;
2 invalid workflow, arguments or repository (one line on stderr, no
traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from envs.git_repository import NotARepositoryError
from envs.job_lock import JobLocked
from envs.limits import ResourceLimits
from envs.store import StoreError
from phases.cli import (
    EXIT_OK,
    EXIT_USAGE,
    RunOptions,
    UsageError,
    describe_agent_command,
    plan_command,
    run_command,
    validate_command,
)
from phases.cli_jobs import (
    ResumeOptions,
    dlq_list_command,
    dlq_purge_command,
    dlq_show_command,
    events_command,
    jobs_command,
    resume_command,
    status_command,
)
from phases.cli_prune import PruneOptions, jobs_prune_command
from phases.cli_worktrees import worktrees_clean_command, worktrees_list_command
from phases.demo import demo_command

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (argparse's own code too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="forkmerge", description="MapReduce workflows over git worktrees.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_repo(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--repo", default=".", help="the repository (default: the current one)")

    run = commands.add_parser("run", help="run a workflow")
    run.add_argument("workflow")
    with_repo(run)
    run.add_argument("--max-parallel", type=int, help="agents at once (overrides the workflow)")
    run.add_argument("--agent-cmd", default="claude --print", help="program for claude: steps")
    run.add_argument("--profile", help="the workflow profile whose env overrides apply")
    run.add_argument("--merge", action="store_true", help="merge the job branch into yours")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.add_argument("--keep-failed", action="store_true", help="keep failed agents' worktrees")
    run.add_argument(
        "--no-pool", action="store_true", help="a new worktree per agent instead of reusing them"
    )
    run.add_argument("--max-worktrees", type=int, help="forkmerge worktrees in the repository")
    run.add_argument("--max-worktrees-per-job", type=int, help="worktrees (and agents) of the job")
    run.add_argument("--disk-warn", type=float, default=90.0, help="warn above this %% full")
    run.add_argument("--disk-limit", type=float, default=98.0, help="no new worktree above %%")
    run.add_argument("--state-dir", help="where worktrees live (default: inside .git)")

    validate = commands.add_parser("validate", help="check a workflow file")
    validate.add_argument("workflow")

    plan = commands.add_parser("plan", help="show setup batches and work items; run nothing")
    plan.add_argument("workflow")
    with_repo(plan)

    commands.add_parser("demo", help="run a demo job on a throwaway repository")

    def job_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        with_repo(sub)
        sub.add_argument("--state-dir", help="forkmerge's state directory (default: inside .git)")
        return sub

    jobs = job_command("jobs", "list the jobs of the repository; jobs prune: forget old ones")
    jobs.add_argument("--json", action="store_true")
    _prune_arguments(jobs)
    status = job_command("status", "show one job's progress")
    status.add_argument("job")
    status.add_argument("--json", action="store_true")
    resume = job_command("resume", "continue a stopped job")
    resume.add_argument("job")
    resume.add_argument("--force", action="store_true", help="even if workflow or input changed")
    resume.add_argument("--max-parallel", type=int)
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--merge", action="store_true", help="merge the job branch into yours")
    events = job_command("events", "print a job's events as JSON lines")
    events.add_argument("job")
    events.add_argument("--follow", action="store_true", help="wait for new events")

    worktrees = commands.add_parser("worktrees", help="forkmerge's worktrees and agent branches")
    worktree_commands = worktrees.add_subparsers(
        dest="worktrees_command", required=True, parser_class=_Parser
    )
    listing = worktree_commands.add_parser(
        "list", help="every worktree and orphaned agent branch of forkmerge, with its state"
    )
    cleaning = worktree_commands.add_parser(
        "clean", help="remove orphaned worktrees and agent branches"
    )
    for sub in (listing, cleaning):
        with_repo(sub)
        sub.add_argument("--state-dir", help="forkmerge's state directory (default: inside .git)")
    listing.add_argument("--json", action="store_true")
    cleaning.add_argument("--job", help="only this job's")
    cleaning.add_argument(
        "--older-than", metavar="AGE", help="only those older than AGE (30m, 2h, 3d, 1w)"
    )
    cleaning.add_argument("--dry-run", action="store_true", help="print it all, change nothing")
    cleaning.add_argument(
        "--force", action="store_true", help="also active ones (their job is running)"
    )

    dlq = commands.add_parser("dlq", help="the dead-letter queue of failed items")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, parser_class=_Parser)
    for name, help_text in (
        ("list", "list a job's failed items"),
        ("show", "show one failed item"),
        ("retry", "run a job's failed items again"),
        ("purge", "give up on a job's failed items"),
    ):
        sub = dlq_commands.add_parser(name, help=help_text)
        sub.add_argument("job")
        with_repo(sub)
        sub.add_argument("--state-dir")
        if name == "show":
            sub.add_argument("item", help="the item's key or index")
        if name == "list":
            sub.add_argument("--json", action="store_true")
        if name == "retry":
            sub.add_argument("--max-parallel", type=int)
            sub.add_argument("--json", action="store_true")
    return parser


def _prune_arguments(jobs: argparse.ArgumentParser) -> None:
    """``jobs prune``'s options, on ``jobs`` itself (see :func:`_refuse_prune_options`)."""
    jobs.add_argument(
        "action",
        nargs="?",
        choices=["prune"],
        metavar="prune",
        help="prune: remove finished jobs' records, event logs, metrics and lock files",
    )
    pruning = jobs.add_argument_group(
        "jobs prune", "forget finished jobs; give --older-than, --job, or both"
    )
    pruning.add_argument(
        "--older-than", metavar="AGE", help="jobs last active longer ago than AGE (30m, 2h, 3d, 1w)"
    )
    pruning.add_argument(
        "--job", dest="prune_jobs", action="append", metavar="JOB", help="this job (repeatable)"
    )
    pruning.add_argument(
        "--force", action="store_true", help="also interrupted jobs and jobs whose process died"
    )
    branches = pruning.add_mutually_exclusive_group()
    branches.add_argument(
        "--keep-branches",
        dest="delete_branches",
        action="store_const",
        const=False,
        help="keep the job branches forkmerge/<job> (the default: they hold the results)",
    )
    branches.add_argument(
        "--delete-branches",
        dest="delete_branches",
        action="store_const",
        const=True,
        help="delete the pruned jobs' branches forkmerge/<job> too",
    )
    pruning.add_argument("--dry-run", action="store_true", help="print it all, change nothing")


def _refuse_prune_options(args: argparse.Namespace) -> None:
    """A ``jobs prune`` option given to plain ``jobs`` is a mistake, not something to ignore."""
    given = {
        "--older-than": args.older_than is not None,
        "--job": args.prune_jobs is not None,
        "--force": args.force,
        "--keep-branches/--delete-branches": args.delete_branches is not None,
        "--dry-run": args.dry_run,
    }
    for option, present in given.items():
        if present:
            raise UsageError(
                f"forkmerge jobs: {option} is an option of `jobs prune`, found it without "
                "`prune` (listing the jobs takes only --repo, --state-dir and --json)"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    out, err = sys.stdout, sys.stderr
    try:
        args = _parser().parse_args(argv)
        if args.command == "validate":
            return validate_command(args.workflow, out)
        if args.command == "demo":
            return demo_command(out, err)
        repo = os.path.abspath(args.repo)
        if args.command == "plan":
            return plan_command(args.workflow, repo, out)
        if args.command != "run":
            return _job_commands(args, repo, out, err)
        options = RunOptions(
            workflow_path=args.workflow,
            repo=repo,
            max_parallel=args.max_parallel,
            agent_command=describe_agent_command(args.agent_cmd),
            profile=args.profile,
            merge=args.merge,
            json=args.json,
            keep_failed=args.keep_failed,
            state_dir=args.state_dir,
            pool=not args.no_pool,
            limits=_limits(args),
        )
        return run_command(options, out, err)
    except (UsageError, NotARepositoryError, JobLocked, StoreError) as error:
        err.write(f"{error}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (``forkmerge jobs | head``): nothing more to say.
        sys.stdout = None  # no flush error at exit
        return EXIT_OK


def _limits(args: argparse.Namespace) -> ResourceLimits:
    try:
        return ResourceLimits(
            args.max_worktrees_per_job, args.max_worktrees, args.disk_warn, args.disk_limit
        )
    except ValueError as error:
        raise UsageError(str(error).replace("`", "")) from None


def _job_commands(args: argparse.Namespace, repo: str, out: TextIO, err: TextIO) -> int:
    state_dir = args.state_dir
    if args.command == "jobs":
        if args.action == "prune":
            pruning = PruneOptions(
                repo,
                state_dir,
                tuple(args.prune_jobs or ()),
                args.older_than,
                args.force,
                bool(args.delete_branches),
                args.dry_run,
                args.json,
            )
            return jobs_prune_command(pruning, out)
        _refuse_prune_options(args)
        return jobs_command(repo, state_dir, as_json=args.json, out=out)
    if args.command == "status":
        return status_command(repo, state_dir, args.job, as_json=args.json, out=out)
    if args.command == "events":
        return events_command(repo, state_dir, args.job, follow=args.follow, out=out)
    if args.command == "resume":
        options = ResumeOptions(
            args.job, repo, state_dir, args.force, False, args.max_parallel, args.json, args.merge
        )
        return resume_command(options, out, err)
    if args.command == "worktrees":
        if args.worktrees_command == "list":
            return worktrees_list_command(repo, state_dir, as_json=args.json, out=out)
        return worktrees_clean_command(
            repo,
            state_dir,
            job=args.job,
            older_than=args.older_than,
            dry_run=args.dry_run,
            force=args.force,
            out=out,
        )
    if args.dlq_command == "list":
        return dlq_list_command(repo, state_dir, args.job, as_json=args.json, out=out)
    if args.dlq_command == "show":
        return dlq_show_command(repo, state_dir, args.job, args.item, out)
    if args.dlq_command == "purge":
        return dlq_purge_command(repo, state_dir, args.job, out)
    retry = ResumeOptions(
        args.job, repo, state_dir, retry_failed=True, max_parallel=args.max_parallel, json=args.json
    )
    return resume_command(retry, out, err)


if __name__ == "__main__":
    sys.exit(main())
