"""Helpers shared by the workflow parsing tests: parse text, get the workflow or its problems."""

from __future__ import annotations

import textwrap

from returns.result import Failure, Success

from pure.workflow import Workflow
from pure.workflow_error import Problem
from pure.workflow_parsing import parse_workflow

MINIMAL = """\
name: demo
map:
  input: items.json
  agent_template:
    - shell: echo ${item}
"""

FULL = """\
name: full-example
mode: mapreduce
env:
  PROJECT: demo
  WIDTH: 4
  TOKEN:
    secret: true
    value: ${GITHUB_TOKEN}
profiles:
  ci:
    description: Continuous integration
    WIDTH: "8"
  quiet: {}
setup:
  timeout: 15m
  commands:
    - shell: "echo '[1, 2]' > items.json"
    - shell: git rev-parse HEAD
      capture: commit
  capture_outputs:
    HEAD_SHA: 1
    SHORT:
      command_index: 1
      pattern: "^(.{7})"
map:
  input: items.json
  json_path: "$[*]"
  agent_template:
    - shell: echo ${item} > out-${item}.txt
  max_parallel: ${WIDTH}
reduce:
  - claude: /summarize ${map.results}
  - write_file: {path: summary.json, content: "${map.results}", format: json}
merge:
  commands:
    - shell: git merge --no-ff ${merge.source_branch}
  timeout: 600
error_policy:
  on_item_failure: skip
"""


def dedent(text: str) -> str:
    """``text`` without its common indentation (tests write YAML indented)."""
    return textwrap.dedent(text).lstrip("\n")


def parse_ok(text: str) -> Workflow:
    """The workflow in ``text``; fails the test with the problems if there are any."""
    result = parse_workflow(dedent(text), source="wf.yml")
    if isinstance(result, Failure):
        raise AssertionError(f"unexpected problems:\n{result.failure()}")
    assert isinstance(result, Success)
    workflow: Workflow = result.unwrap()
    return workflow


def problems(text: str) -> list[Problem]:
    """The problems of ``text``; fails the test if it parses."""
    result = parse_workflow(dedent(text), source="wf.yml")
    assert isinstance(result, Failure), "expected problems, but the workflow parsed"
    return list(result.failure().problems)


def only_problem(text: str) -> Problem:
    """The single problem of ``text``."""
    found = problems(text)
    assert len(found) == 1, "\n".join(str(p) for p in found)
    return found[0]


def with_map(extra: str, *, steps: str = "- shell: echo hi") -> str:
    """A workflow whose map block has the lines ``extra`` besides input and agent_template."""
    body = textwrap.indent(dedent(extra).rstrip("\n") + "\n", "  ")
    template = textwrap.indent(dedent(steps).rstrip("\n") + "\n", "    ")
    return f"name: demo\nmap:\n  input: items.json\n  agent_template:\n{template}{body}"


def with_step(step: str) -> str:
    """A workflow whose only agent step is the mapping ``step`` (YAML lines, no leading dash)."""
    lines = dedent(step).splitlines()
    first, rest = lines[0], lines[1:]
    body = "\n".join([f"    - {first}", *(f"      {line}" for line in rest)])
    return f"name: demo\nmap:\n  input: items.json\n  agent_template:\n{body}\n"
