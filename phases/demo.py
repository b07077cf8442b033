"""``demo``: a throwaway repository and workflow, run end to end with real git and processes."""

from __future__ import annotations

import json
import os
import tempfile
from typing import TextIO

from envs.demo_repository import create_repository
from phases.cli import RunOptions, run_command

__all__ = ["DEMO_WORKFLOW", "demo_command"]

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]

DEMO_WORKFLOW = """\
# The demo workflow: one agent per word, each in its own git worktree.
name: demo-shout
mode: mapreduce

setup:
  - shell: "mkdir -p shouted && printf 'run by forkmerge\\\\n' > shouted/README"

map:
  input: words.json
  json_path: "$.words[*]"
  filter: "length(text) > 0"
  sort_by: "name"
  max_parallel: 4
  agent_template:
    # Item values reach the shell as data, quoted for their context.
    - shell: "sleep 0.3; printf '%s\\\\n' ${item.text} | tr a-z A-Z > shouted/${item.name}.txt"
    - shell: "test -s shouted/${item.name}.txt"

reduce:
  - shell: "cat shouted/*.txt > ALL.txt && wc -l < ALL.txt"
    capture: lines
    capture_format: number
  - write_file:
      path: summary.json
      content: "${map.results}"
      format: json
  - shell: "echo ${map.successful} of ${map.total} agents merged, ${lines} lines shouted"
"""


def demo_command(out: TextIO, err: TextIO, *, directory: str | None = None) -> int:
    """Create a repository with a word list, run the demo workflow on it, print the result."""
    root = directory or tempfile.mkdtemp(prefix="forkmerge-demo-")
    words = {"words": [{"name": word, "text": f"{word} says hello"} for word in WORDS]}
    repo = create_repository(
        os.path.join(root, "repo"),
        {
            "README.md": "# forkmerge demo repository\n",
            "words.json": json.dumps(words, indent=2) + "\n",
            "demo.yml": DEMO_WORKFLOW,
        },
    )
    out.write(f"demo repository: {repo}\n")
    options = RunOptions(
        workflow_path=os.path.join(repo, "demo.yml"), repo=repo, agent_command=("true",)
    )
    code = run_command(options, out, err)
    out.write(
        f"inspect it: git -C {repo} log --oneline --graph forkmerge/<job id>\n"
        f"            (the job branch is named above; {repo} is yours to delete)\n"
    )
    return code
