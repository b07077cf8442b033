"""Every workflow in examples/ parses, and the three kinds the project promises are there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from returns.result import Success

from pure.dependency_analysis import analyze_dependencies
from pure.work_planning import plan_work_assignments
from pure.workflow import ClaudeCommand, ShellCommand, Workflow, WriteFileCommand
from pure.workflow_parsing import parse_workflow
from pure.workflow_resolution import effective_env, env_text, resolve_max_parallel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.glob("*.yml"))


def example(name: str) -> Workflow:
    path = EXAMPLES / name
    result = parse_workflow(path.read_text(encoding="utf-8"), source=f"examples/{name}")
    assert isinstance(result, Success), str(result.failure())
    workflow: Workflow = result.unwrap()
    return workflow


def test_there_are_at_least_three_examples() -> None:
    assert len(FILES) >= 3


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_example_parses_and_needs_no_agent(path: Path) -> None:
    workflow = example(path.name)
    steps = [*workflow.setup.steps, *workflow.map.agent_template, *workflow.reduce]
    assert steps
    assert not any(isinstance(step.command, ClaudeCommand) for step in steps)


def test_the_json_file_example_selects_sorts_and_filters_its_items() -> None:
    workflow = example("json-input.yml")
    assert workflow.map.input == "examples/items.json"
    document = json.loads((EXAMPLES / "items.json").read_text(encoding="utf-8"))
    assignments = plan_work_assignments(document, workflow.map)
    assert [assignment.item["id"] for assignment in assignments] == [4, 1, 3, 5]
    assert workflow.reduce[0].capture == "report_count"


def test_the_command_example_reads_a_command_and_writes_files() -> None:
    workflow = example("command-input.yml")
    assert workflow.map.input.startswith("printf ")
    assert not (EXAMPLES / workflow.map.input.strip()).exists()
    assert workflow.map.distinct == "word"
    assert isinstance(workflow.map.agent_template[0].command, WriteFileCommand)


def test_the_setup_and_reduce_example_runs_independent_setup_steps_together() -> None:
    workflow = example("setup-and-reduce.yml")
    assert len(workflow.setup.steps) == 3 and workflow.setup.timeout == 120.0
    assert analyze_dependencies(workflow.setup.steps).parallel_batches() == [[0, 2], [1]]
    assert workflow.reduce and isinstance(workflow.reduce[0].command, ShellCommand)
    default = env_text(effective_env(workflow).unwrap())
    ci = env_text(effective_env(workflow, "ci").unwrap())
    assert resolve_max_parallel(workflow, default) == Success(3)
    assert resolve_max_parallel(workflow, ci) == Success(1)
