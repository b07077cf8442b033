"""A workflow survives unstructure -> JSON -> structure unchanged, locations included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cattrs.errors import ClassValidationError
from returns.result import Success

from pure.workflow import Workflow
from pure.workflow_codec import structure_workflow, unstructure_workflow
from pure.workflow_parsing import parse_workflow
from tests.pure.workflow_helpers import FULL, parse_ok

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [
        *(ROOT / "examples").glob("*.yml"),
        *(ROOT.parent / "shared" / "prodigy-workflows").glob("*.yml"),
    ]
)

EVERYTHING = """
name: everything
env: {A: "1", S: {secret: true, value: x}}
profiles: {p: {description: d, A: "2"}}
setup:
  timeout: 60
  commands:
    - shell: a
      capture: out
      capture_format: lines
      env: {X: y}
      working_dir: w
      when: "true"
      reads: [r]
      writes: []
  capture_outputs: {V: {command_index: 0, source: stderr, multiline: array}}
map:
  input: items.json
  json_path: $[*]
  filter: "x > 1"
  sort_by: x DESC
  distinct: x
  offset: 1
  max_items: 5
  max_parallel: $N
  timeout_config:
    agent_timeout_secs: 30
    command_timeouts: {shell_0: 5}
    timeout_policy: hybrid
  agent_template:
    - shell: run
      on_failure:
        commands: [{shell: fix, continue_on_error: true}, /ask]
        handler_failure_fatal: true
        timeout: 9
        max_attempts: 2
      on_success: {claude: /done}
    - write_file: {path: p, content: c, format: yaml, create_dirs: true, mode: "0600"}
reduce:
  - claude: /sum
merge:
  commands: [{shell: m}]
  timeout: 1h
error_policy:
  on_item_failure: retry
  error_collection: batched:3
  retry_config: {backoff: {exponential: {initial: 2s, multiplier: 1.5}}}
  circuit_breaker: {timeout: 10s}
"""


def round_trip(workflow: Workflow) -> Workflow:
    text = json.dumps(unstructure_workflow(workflow))
    return structure_workflow(json.loads(text))


def test_a_workflow_using_every_field_round_trips() -> None:
    workflow = parse_ok(EVERYTHING)
    back = round_trip(workflow)
    assert back == workflow
    assert back.locations == workflow.locations
    assert round_trip(parse_ok(FULL)) == parse_ok(FULL)


def test_commands_carry_a_kind_tag() -> None:
    data = unstructure_workflow(parse_ok(EVERYTHING))
    kinds = [step["command"]["kind"] for step in data["map"]["agent_template"]]
    assert kinds == ["shell", "write_file"]
    assert data["map"]["agent_template"][0]["on_failure"]["handler"][1]["command"] == {
        "kind": "claude",
        "text": "/ask",
    }


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_every_parsable_example_and_corpus_workflow_round_trips(path: Path) -> None:
    result = parse_workflow(path.read_text(encoding="utf-8"), source=path.name)
    if isinstance(result, Success):
        workflow = result.unwrap()
        assert round_trip(workflow) == workflow


def test_data_that_is_no_workflow_is_rejected() -> None:
    data = unstructure_workflow(parse_ok(EVERYTHING))
    data["map"]["agent_template"][0]["command"]["kind"] = "python"
    with pytest.raises(ClassValidationError):
        structure_workflow(data)
    data = unstructure_workflow(parse_ok(EVERYTHING))
    data["unexpected"] = 1
    with pytest.raises(ClassValidationError):
        structure_workflow(data)
