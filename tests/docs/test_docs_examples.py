"""The user documentation stays true: its workflows, commands, messages and links are real.

Checked in docs/getting-started.md, running-jobs.md, troubleshooting.md and
architecture.md:

- every ```yaml block is a workflow ``parse_workflow`` accepts; a block
  tagged ```yaml invalid is one it refuses, with exactly the problems the
  page quotes (its first line, ``# NAME``, is the file name);
- every ``forkmerge ...`` / ``python -m phases ...`` command, in a shell
  block or inline, is accepted by the real argument parser, and every
  ``make`` target named exists;
- the options table of ``run`` lists exactly the options ``run`` has;
- the messages the troubleshooting page quotes are the ones forkmerge
  produces for the page's own examples;
- the ```python blocks of architecture.md compile, and those not tagged
  ``no-run`` run (against the mock environment, in no real time);
- every relative link points to an existing page and heading.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import attrs
import pytest
from returns.result import Failure, Success

from envs.demo_repository import create_repository
from phases.__main__ import _parser, main
from phases.cli import UsageError
from pure.interpolation import try_interpolate
from pure.work_planning import plan_work_assignments
from pure.workflow import Workflow
from pure.workflow_parsing import parse_workflow
from pure.workflow_resolution import effective_env, resolve_max_parallel

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = ("getting-started.md", "running-jobs.md", "troubleshooting.md", "architecture.md")
COMMAND_PREFIXES = (
    ("forkmerge",),
    (".venv/bin/forkmerge",),
    ("python", "-m", "phases"),
    (".venv/bin/python", "-m", "phases"),
)
SHELL_INFOS = ("sh", "shell", "bash", "console")
SUBCOMMAND_OR_OPTION = ("run", "validate", "plan", "demo", "-h", "--help")

_FENCE = re.compile(r"^```(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


@attrs.frozen
class Block:
    """A fenced code block: its page, the line of its opening fence, its info string, its text."""

    page: str
    line: int
    info: str
    body: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def fenced_blocks(page: str, text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order (fences are not nested)."""
    blocks: list[Block] = []
    opened: tuple[int, str] | None = None
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        fence = _FENCE.match(line)
        if opened is None:
            if fence:
                opened, lines = (number, fence.group(1).strip()), []
        elif line.strip() == "```":
            blocks.append(Block(page, opened[0], opened[1], "\n".join(lines) + "\n"))
            opened = None
        else:
            lines.append(line)
    assert opened is None, f"{page}: the block opened at line {opened[0]} is never closed"
    return blocks


def prose(text: str) -> str:
    """The text outside fenced blocks."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if _FENCE.match(line) and (not inside or line.strip() == "```"):
            inside = not inside
            continue
        if not inside:
            kept.append(line)
    return "\n".join(kept)


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a page (lower case, punctuation dropped)."""
    anchors: set[str] = set()
    for line in prose(text).splitlines():
        match = _HEADING.match(line)
        if match:
            title = re.sub(r"[^\w\- ]", "", match.group(2).replace("`", "").lower())
            anchors.add(title.replace(" ", "-"))
    return anchors


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


ALL_BLOCKS = [block for name in PAGES for block in fenced_blocks(name, page(name))]


def blocks_with(info: str) -> list[Block]:
    return [block for block in ALL_BLOCKS if block.info == info]


def parsed(block: Block) -> Workflow:
    result = parse_workflow(block.body, source=source_name(block))
    assert isinstance(result, Success), f"{block.id}:\n{result.failure()}"
    workflow: Workflow = result.unwrap()
    return workflow


def source_name(block: Block) -> str:
    """The file name a block gives in its first line (``# typo.yml``), else ``doc.yml``."""
    first = block.body.splitlines()[0]
    if first.startswith("# ") and first.endswith((".yml", ".yaml")):
        return first[2:].strip()
    return "doc.yml"


def command_lines() -> list[tuple[str, list[str]]]:
    """Every forkmerge command line of the pages, split into words, with where it is."""
    found: list[tuple[str, list[str]]] = []
    for block in ALL_BLOCKS:
        for offset, line in enumerate(block.body.splitlines(), 1):
            where = f"{block.page}:{block.line + offset}"
            if block.info in SHELL_INFOS:
                found.append((where, shlex.split(line, comments=True)))
            elif line.startswith("$ "):  # a command shown with its output
                found.append((where, shlex.split(line[2:], comments=True)))
    for name in PAGES:
        for span in _INLINE_CODE.findall(prose(page(name))):
            found.append((f"{name}: `{span}`", span.split()))
    return [(where, words) for where, words in found if _command_prefix(words) is not None]


def _command_prefix(words: list[str]) -> tuple[str, ...] | None:
    """The program words ``words`` start with, when they are a forkmerge command line."""
    for prefix in COMMAND_PREFIXES:
        rest = words[len(prefix) :]
        if tuple(words[: len(prefix)]) == prefix and rest and rest[0] in SUBCOMMAND_OR_OPTION:
            return prefix
    return None


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subparsers of ``parser`` by name (none when it has no subcommands)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def long_options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def run_parser() -> argparse.ArgumentParser:
    return subcommands(_parser())["run"]


# --- the pages have what is checked ---------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_each_page_has_code_blocks(name: str) -> None:
    assert fenced_blocks(name, page(name)), name


def test_the_getting_started_and_reference_pages_show_workflows() -> None:
    shown = {block.page for block in blocks_with("yaml")}
    assert {"getting-started.md", "running-jobs.md", "troubleshooting.md"} <= shown


def test_fenced_blocks_reads_info_lines_and_bodies() -> None:
    text = "a\n```yaml invalid\nname: x\n```\n\n```\nplain\n```\n"
    assert fenced_blocks("p.md", text) == [
        Block("p.md", 2, "yaml invalid", "name: x\n"),
        Block("p.md", 6, "", "plain\n"),
    ]
    assert heading_anchors("# The `--json` result\n```\n# not a heading\n```\n") == {
        "the---json-result"
    }


# --- workflows ------------------------------------------------------------------------------


@pytest.mark.parametrize("block", blocks_with("yaml"), ids=lambda block: block.id)
def test_every_yaml_block_is_a_valid_workflow(block: Block) -> None:
    workflow = parsed(block)
    steps = [*workflow.setup.steps, *workflow.map.agent_template, *workflow.reduce]
    assert steps, block.id


@pytest.mark.parametrize("block", blocks_with("yaml invalid"), ids=lambda block: block.id)
def test_every_invalid_yaml_block_fails_with_the_problems_its_page_quotes(block: Block) -> None:
    result = parse_workflow(block.body, source=source_name(block))
    assert isinstance(result, Failure), f"{block.id} is valid but is shown as invalid"
    quoted = page(block.page)
    for problem in str(result.failure()).splitlines():
        assert problem in quoted, f"{block.id}: the page does not quote {problem!r}"


def test_the_first_workflow_plans_one_agent_per_note() -> None:
    getting_started = [block for block in blocks_with("yaml") if block.page == "getting-started.md"]
    items = json.loads(
        next(b for b in ALL_BLOCKS if b.page == "getting-started.md" and b.info == "json").body
    )
    workflow = parsed(getting_started[0])
    assert workflow.name == "count-words" and workflow.map.input == "items.json"
    assignments = plan_work_assignments(items, workflow.map)
    assert len(assignments) == 3
    shown = page("getting-started.md")
    for assignment in assignments:  # the lines `plan` prints for them
        item = json.dumps(assignment.item, ensure_ascii=False)
        assert f"{assignment.index:4d} {assignment.worktree_name}  {item}" in shown


# --- commands -------------------------------------------------------------------------------


def test_the_pages_show_commands() -> None:
    assert len(command_lines()) >= 20


@pytest.mark.parametrize("where_words", command_lines(), ids=lambda pair: pair[0])
def test_every_command_shown_is_accepted_by_the_parser(where_words: tuple[str, list[str]]) -> None:
    where, words = where_words
    prefix = _command_prefix(words)
    assert prefix is not None
    argv = words[len(prefix) :]
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help
        assert exit_.code == 0, where
        return
    assert args.command in {"run", "validate", "plan", "demo"}, where


def test_a_wrong_command_is_refused_by_the_same_check() -> None:
    with pytest.raises(UsageError, match="unrecognized arguments: --max-paralel"):
        _parser().parse_args(["run", "flow.yml", "--max-paralel", "2"])


def test_every_make_target_named_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.MULTILINE))
    named = {
        words[1]
        for block in ALL_BLOCKS
        if block.info in SHELL_INFOS
        for words in (line.split() for line in block.body.splitlines())
        if len(words) > 1 and words[0] == "make"
    }
    assert named and named <= targets, named - targets


def test_the_run_options_table_lists_exactly_the_options_of_run() -> None:
    reference = page("running-jobs.md")
    section = reference.split("### `run WORKFLOW`", 1)[1].split("###", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z-]+)", section, re.MULTILINE))
    assert documented == long_options(run_parser())


def synopsis_entries() -> dict[str, str]:
    """The synopsis lines of running-jobs.md by command (``run``, ``dlq list``), joined."""
    reference = page("running-jobs.md")
    synopsis = reference.split("## Commands", 1)[1].split("```", 2)[1].split("\n", 1)[1]
    entries: dict[str, str] = {}
    for entry in re.split(r"\n(?=forkmerge )", synopsis.strip()):
        words = [word for word in entry.split() if word[0] not in "[-"]
        name = " ".join(words[1:3]) if words[1] in ("dlq", "worktrees") else words[1]
        entries[name] = entry
    return entries


def test_every_subcommand_and_option_is_in_the_reference() -> None:
    reference = page("running-jobs.md")
    entries = synopsis_entries()
    commands = subcommands(_parser())
    assert {"run", "validate", "plan", "demo"} <= set(commands)
    for name, parser in commands.items():
        nested = subcommands(parser)
        for full, sub in [(f"{name} {child}", p) for child, p in nested.items()] or [
            (name, parser)
        ]:
            assert full in entries, f"the synopsis has no line for {full!r}"
            missing = {option for option in long_options(sub) if option not in entries[full]}
            assert not missing, f"{full}: {missing} not in the synopsis"
        assert f"### `{name}" in reference, f"running-jobs.md has no section for {name}"


def test_the_exit_codes_table_names_each_code_of_the_command_line() -> None:
    reference = page("running-jobs.md")
    section = reference.split("## Exit codes", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"^\| (\d+) \|", section, re.MULTILINE)) == {"0", "1", "2", "130"}


# --- quoted messages ------------------------------------------------------------------------


def block_named(name: str) -> Block:
    return next(
        block
        for block in ALL_BLOCKS
        if block.info.startswith("yaml") and source_name(block) == name
    )


def test_the_unknown_profile_message_is_quoted_exactly() -> None:
    workflow = parsed(block_named("profiles.yml"))
    result = effective_env(workflow, "prodution")
    assert isinstance(result, Failure)
    assert str(result.failure()) in page("troubleshooting.md")


def test_the_max_parallel_messages_are_quoted_exactly() -> None:
    workflow = parsed(block_named("width.yml"))
    quoted = page("troubleshooting.md")
    for env in ({}, {"WIDTH": "x"}):
        result = resolve_max_parallel(workflow, env)
        assert isinstance(result, Failure)
        assert str(result.failure()) in quoted


@pytest.mark.parametrize(
    "template",
    ["echo ${item.title}", "echo ${NOTE:-${item.name}}", "echo ${item"],
)
def test_the_interpolation_messages_are_quoted_exactly(template: str) -> None:
    result = try_interpolate(template, {"item": {"name": "plain-text"}}, context="shell")
    assert isinstance(result, Failure)
    message = str(result.failure())
    quoted = " ".join(page("troubleshooting.md").split())  # prose lines may wrap a message
    assert message in quoted


def test_not_a_repository_is_reported_as_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "flow.yml"
    flow.write_text(parsed_text("getting-started.md"), encoding="utf-8")
    assert main(["run", str(flow), "--repo", str(tmp_path)]) == 2
    message = capsys.readouterr().err.strip()
    suffix = ": not a git repository (nor inside one)"
    assert message == f"{tmp_path}{suffix}"
    assert f"/tmp/scratch{suffix}" in page("troubleshooting.md")


def test_an_uncommitted_input_file_is_reported_as_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = create_repository(str(tmp_path / "repo"), {"README.md": "notes\n"})
    monkeypatch.chdir(repo)
    Path("flow.yml").write_text(parsed_text("getting-started.md"), encoding="utf-8")
    Path("items.json").write_text("[]\n", encoding="utf-8")
    assert main(["run", "flow.yml"]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("flow.yml: map.input file 'items.json' is not committed")
    assert message in page("getting-started.md")
    assert message in page("troubleshooting.md")


def parsed_text(name: str) -> str:
    return next(block.body for block in blocks_with("yaml") if block.page == name)


# --- python ---------------------------------------------------------------------------------


def test_the_python_blocks_of_the_architecture_page_compile_and_run() -> None:
    blocks = [block for block in ALL_BLOCKS if block.info.split()[:1] == ["python"]]
    assert len(blocks) >= 3
    namespace: dict[str, object] = {"__name__": "docs_architecture"}
    for block in blocks:
        code = compile(block.body, block.id, "exec")
        if block.info == "python":
            exec(code, namespace)
    assert "RecordingExecutor" in namespace


# --- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*PAGES, "../README.md"])
def test_every_relative_link_points_to_a_page_and_heading_that_exist(name: str) -> None:
    source = (DOCS / name).resolve()
    text = source.read_text(encoding="utf-8")
    for target in _LINK.findall(prose(text)):
        if "://" in target or target.startswith("mailto:"):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (source.parent / path_part).resolve() if path_part else source
        assert linked.exists(), f"{name}: {target} points to a missing file"
        if anchor and linked.suffix == ".md":
            anchors = heading_anchors(linked.read_text(encoding="utf-8"))
            assert anchor in anchors, f"{name}: {target} points to a missing heading"
