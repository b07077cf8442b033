"""The 17 real Prodigy workflows: each parses, or fails only as unsupported or as invalid YAML.

Each file has its expected outcome here, so a regression in either direction
(a file that stops parsing, or a problem that is no longer reported) fails
by name. The corpus is read-only data next to the project.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from returns.result import Failure, Success

from pure.workflow import ClaudeCommand, EnvValue, OnFailure, ShellCommand, Step, Workflow
from pure.workflow_parsing import parse_workflow

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "prodigy-workflows"

PARSES: tuple[str, None] = ("parses", None)

# file name -> PARSES, ("unsupported", [features named]), or ("yaml", line of the syntax error)
EXPECTED: dict[str, tuple[str, object]] = {
    "examples_capture-output-custom-vars.yml": PARSES,
    "examples_capture-parallel-analysis.yml": ("yaml", 104),
    "examples_mapreduce-command-input.yml": PARSES,
    "examples_mapreduce-json-input.yml": ("yaml", 30),
    "tests_workflows_test-commit-validation.yml": PARSES,
    "workflows_book-docs-drift.yml": ("unsupported", ["validate"]),
    "workflows_debtmap-reduce.yml": ("unsupported", ["validate", "validate"]),
    "workflows_documentation-drift-mapreduce.yml": PARSES,
    "workflows_fix-files-mapreduce.yml": PARSES,
    "workflows_mapreduce-env-example.yml": PARSES,
    "workflows_mapreduce-example.yml": PARSES,
    "workflows_mkdocs-drift.yml": ("unsupported", ["validate"]),
    "workflows_test-mapreduce-context.yml": PARSES,
    "workflows_test-mapreduce.yml": PARSES,
    "workflows_tests_minimal-mapreduce.yml": PARSES,
    "workflows_tests_test-mapreduce-resume.yml": PARSES,
    "workflows_workflow-syntax-drift.yml": PARSES,
}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


def parse(name: str) -> Workflow:
    result = parse_workflow((CORPUS / name).read_text(encoding="utf-8"), source=name)
    assert isinstance(result, Success), str(result.failure())
    workflow: Workflow = result.unwrap()
    return workflow


def test_every_corpus_file_has_an_expected_outcome() -> None:
    assert sorted(path.name for path in CORPUS.glob("*.yml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str) -> None:
    kind, detail = EXPECTED[name]
    result = parse_workflow((CORPUS / name).read_text(encoding="utf-8"), source=name)
    if kind == "parses":
        assert isinstance(result, Success), str(result.failure())
        return
    assert isinstance(result, Failure)
    found = result.failure().problems
    if kind == "yaml":
        (problem,) = found
        assert problem.message.startswith("invalid YAML: ")
        assert problem.line == detail
        assert str(problem).startswith(f"{name}:{detail}:")
    else:
        assert all(problem.unsupported for problem in found), [str(p) for p in found]
        named = [problem.path.rsplit(".", 1)[-1] for problem in found]
        assert named == detail
        for problem in found:
            assert problem.message == (
                f"unsupported: step key {named[0]!r} (Prodigy validation blocks)"
                " is not supported by forkmerge"
            )


def test_env_secrets_profiles_merge_and_list_handlers() -> None:
    workflow = parse("workflows_mapreduce-env-example.yml")
    assert workflow.env["API_TOKEN"] == EnvValue("${GITHUB_TOKEN}", secret=True)
    assert workflow.env["TIMEOUT_SECONDS"] == EnvValue("300")
    assert workflow.profiles["development"]["OUTPUT_DIR"] == EnvValue("dev-output")
    assert workflow.profile_descriptions["production"] == "Production environment"
    assert workflow.merge is not None and len(workflow.merge.steps) == 4
    assert workflow.map.agent_template[3].on_failure == OnFailure(
        (Step(ClaudeCommand("/fix-issue '${item.name}' --max-retries $MAX_RETRIES")),)
    )


def test_filters_sorting_and_captures() -> None:
    fixes = parse("workflows_fix-files-mapreduce.yml")
    assert fixes.map.filter == "path matches '\\.rs$' && has_issues == true"
    assert fixes.map.sort_by == "complexity DESC"
    assert fixes.map.agent_template[0].capture == "claude.output"
    assert fixes.map.agent_template[0].timeout == 300.0
    assert fixes.setup.steps[0].capture is None
    custom = parse("examples_capture-output-custom-vars.yml")
    assert [step.capture for step in custom.setup.steps] == ["shell.output", "file_count", None]


def test_setup_timeout_commands_form_and_max_parallel_from_env() -> None:
    syntax = parse("workflows_workflow-syntax-drift.yml")
    assert syntax.map.agent_timeout_secs == 300.0
    assert syntax.error_policy.max_failures == 2
    assert syntax.error_policy.error_collection.strategy == "aggregate"
    command_input = parse("examples_mapreduce-command-input.yml")
    assert command_input.map.input == "find . -name '*.rs' -type f | head -20"
    assert command_input.map.agent_timeout_secs == 30.0
    assert command_input.map.timeout_config.agent_timeout_secs == 30.0


def test_on_failure_handlers_keep_their_step_options() -> None:
    example = parse("workflows_mapreduce-example.yml")
    handler = example.map.agent_template[1].on_failure
    assert handler is not None
    assert handler.fail_workflow is False and handler.max_attempts == 1
    assert handler.handler[0].command == ClaudeCommand("/debug-test ${shell.output}")
    commit = parse("tests_workflows_test-commit-validation.yml")
    assert commit.map.agent_template[0].commit_required
    assert isinstance(commit.map.agent_template[0].command, ShellCommand)
