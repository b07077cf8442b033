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

from envs.git_repository import NotARepositoryError
from phases.cli import (
    EXIT_USAGE,
    RunOptions,
    UsageError,
    describe_agent_command,
    plan_command,
    run_command,
    validate_command,
)
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
    run.add_argument("--state-dir", help="where worktrees live (default: inside .git)")

    validate = commands.add_parser("validate", help="check a workflow file")
    validate.add_argument("workflow")

    plan = commands.add_parser("plan", help="show setup batches and work items; run nothing")
    plan.add_argument("workflow")
    with_repo(plan)

    commands.add_parser("demo", help="run a demo job on a throwaway repository")
    return parser


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
        )
        return run_command(options, out, err)
    except (UsageError, NotARepositoryError) as error:
        err.write(f"{error}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
