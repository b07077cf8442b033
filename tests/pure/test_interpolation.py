"""Interpolation of references: resolution, rendering, defaults, errors, shell safety."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from pure.interpolation import (
    InterpolationError,
    interpolate,
    referenced_names,
    try_interpolate,
)

ITEM = {
    "id": 7,
    "name": "fix it",
    "tags": ["a", "b"],
    "location": {"file": "src/x.rs", "line": 12},
    "odd key": "spaced",
    "flag": True,
    "none": None,
    "empty": "",
}
VARIABLES: dict[str, Any] = {
    "item": ITEM,
    "map": {"results": [{"ok": True}, {"ok": False}], "successful": 3, "failed": 0},
    "shell": {"output": "line 1\nline 2", "exit_code": 0},
    "NAME": "project",
    "item_id": "item-7",
    "validation.gaps": ["g1", "g2"],
}


def text(template: str, variables: dict[str, Any] | None = None) -> str:
    return interpolate(template, VARIABLES if variables is None else variables)


def shell(template: str, variables: dict[str, Any] | None = None) -> str:
    return interpolate(template, VARIABLES if variables is None else variables, context="shell")


def error_of(
    template: str, context: str = "text", variables: dict[str, Any] | None = None
) -> InterpolationError:
    with pytest.raises(InterpolationError) as caught:
        if context == "shell":
            shell(template, variables)
        else:
            text(template, variables)
    return caught.value


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${item.name}", "fix it"),
        ("${item.id}", "7"),
        ("${item.flag} ${item.none}", "true null"),
        ("${item.tags}", '["a","b"]'),
        ("${item.tags[0]} ${item.tags.1} ${item.tags[-1]}", "a b b"),
        ("${item.location.file}:${item.location.line}", "src/x.rs:12"),
        ("${item['odd key']} ${item[\"odd key\"]}", "spaced spaced"),
        ("${item.location}", '{"file":"src/x.rs","line":12}'),
        ("${map.results}", '[{"ok":true},{"ok":false}]'),
        ("${map.successful}/${map.failed}", "3/0"),
        ("${shell.output}", "line 1\nline 2"),
        ("${shell.exit_code}", "0"),
        ("${NAME} $NAME-$item_id", "project project-item-7"),
        ("$NAME.txt ${item_id}x", "project.txt item-7x"),
        ("${validation.gaps}", '["g1","g2"]'),
        ("${validation.gaps[1]}", "g2"),
        ("no references at all", "no references at all"),
    ],
)
def test_references_resolve_and_render(template: str, expected: str) -> None:
    assert text(template) == expected


def test_json_rendering_is_compact_and_keeps_unicode() -> None:
    value = {"name": "café ☕", "n": [1, 2.5], "t": (1, 2)}
    assert text("${v}", {"v": value}) == '{"name":"café ☕","n":[1,2.5],"t":[1,2]}'
    assert text("${v:json}", {"v": 'say "hi"'}) == '"say \\"hi\\""'
    assert text("${item:json}", {"item": 3}) == "3"


def test_a_flat_dotted_key_wins_over_the_namespace() -> None:
    variables = {"shell.output": "flat", "shell": {"output": "nested"}}
    assert text("${shell.output}", variables) == "flat"
    assert text("${shell.output}", {"shell": {"output": "nested"}}) == "nested"


def test_the_longest_dotted_key_that_resolves_wins() -> None:
    variables = {"a.b": 1, "a": {"b": {"c": 2}}, "a.b.c.d": {"e": 3}}
    assert text("${a.b.c}", variables) == "2"
    assert text("${a.b.c.d.e}", variables) == "3"
    assert text("${a.b}", variables) == "1"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${item.nope}", "unresolved reference ${item.nope}: item has no field 'nope'"),
        (
            "${item.location.nope}",
            "unresolved reference ${item.location.nope}: item.location has no field 'nope'",
        ),
        ("${map.nope}", "unresolved reference ${map.nope}: map has no field 'nope'"),
        (
            "${item.tags[5]}",
            "unresolved reference ${item.tags[5]}: item.tags has no index 5 (it has 2 elements)",
        ),
        ("${item.name.x}", "item.name is a string, not an object, so it has no field 'x'"),
        ("${item.id.x}", "item.id is a number, not an object"),
        ("${item.flag.x}", "item.flag is a boolean, not an object"),
        ("${item.none.x}", "item.none is null, not an object"),
        ("${item.tags.x}", "item.tags is an array, not an object"),
        ("${item.location[0]}", "item.location is an object, not an array, so it has no index 0"),
        ("${item.tags[0][1]}", "item.tags[0] is a string, not an array"),
        ("${item.location.file[0]}", "item.location.file is a string, not an array"),
        (
            "${nope.x}",
            "unresolved reference ${nope.x}: no variable 'nope' "
            "(known: NAME, item, item_id, map, shell, validation.gaps)",
        ),
        ("${validation.gaps.x}", "validation.gaps is an array, not an object"),
    ],
)
def test_unresolved_dotted_references_name_what_is_missing(template: str, message: str) -> None:
    error = error_of("echo " + template)
    assert message in str(error)
    assert error.reference == template
    assert error.column == 6
    assert error.template == "echo " + template


def test_unknown_variable_lists_a_bounded_number_of_names() -> None:
    many = {f"v{n:02}": n for n in range(20)}
    assert str(error_of("${nope.x}", variables=many)).endswith("v11, ...)")
    with pytest.raises(InterpolationError, match=r"there are no variables"):
        interpolate("${nope.x}", {})


def test_other_value_types_are_named_by_their_type() -> None:
    with pytest.raises(InterpolationError, match="s is a frozenset, not an object"):
        interpolate("${s.x}", {"s": frozenset()})


@pytest.mark.parametrize(
    "template",
    [
        "$HOME ${HOME} $i ${i}",
        "$1 $? $@ $* $# $- $! $0 ${1} ${@} ${#}",
        "$(date) $((1 + 2)) $$ $$NAME",
        "${#x} ${!x} ${x%.txt} ${x##*/} ${x:=3} ${x:+y} ${x:0:2} ${x/a/b} ${x-d}",
        "${arr[@]} ${arr[*]} ${NAME%.txt} ${ spaced }",
        "price: 5$ and $ alone, trailing $",
    ],
)
def test_what_is_not_a_workflow_variable_is_left_for_the_shell(template: str) -> None:
    assert text(template) == template
    assert shell(template) == template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${item.x%y}", "expected '}', ':-default', ':raw' or ':json' after 'item.x', found '%y'"),
        ("${item.}", "expected a field name or an index like [0] after 'item', found '.'"),
        ("${nope.}", "after 'nope', found '.'"),
        ("${NAME[0}", "after 'NAME', found '[0'"),
        ("${item.tags[x]}", "after 'item.tags', found '[x]'"),
        ("${item.0abc}", "cannot read reference ${item.0abc}: expected a field name at column 6"),
    ],
)
def test_references_that_cannot_be_read(template: str, message: str) -> None:
    assert message in str(error_of(template))


def test_unclosed_references() -> None:
    error = error_of("echo ${item.name and more")
    assert str(error) == (
        "unclosed reference ${item.name and more at column 6: "
        "expected '}' to end it on the same line"
    )
    assert error.column == 6
    assert "column 3" in str(error_of("a ${item\n}"))
    assert "column 1" in str(error_of("${" + "x" * 40))


def test_defaults() -> None:
    assert text("${item.nope:-none} ${item.none:-was null} ${item.empty:-was empty}") == (
        "none was null was empty"
    )
    assert text("${item.id:-x} ${item.flag:-x} ${map.failed:-x}") == "7 true 0"
    assert text("${nope:-fallback} ${nope:-} ${nope|default:u}") == "fallback  u"
    assert text("${map.duration|default:unknown}") == "unknown"
    assert text("${item.nope:-a:-b}") == "a:-b"
    assert text("${item.nope:-$HOME}") == "$HOME"


def test_defaults_in_the_shell() -> None:
    # an unknown plain name with :- is the shell's own expansion: left for it
    assert shell("echo ${PORT:-8080}") == "echo ${PORT:-8080}"
    assert shell("echo ${nope|default:a b}") == "echo 'a b'"
    assert shell("echo ${item.nope:-a b; rm}") == "echo 'a b; rm'"
    assert shell("echo ${item.empty:-$(id)}") == "echo '$(id)'"
    assert shell("echo ${item_id:-x}") == "echo 'item-7'"


def test_raw_and_json_modes() -> None:
    variables = {"cmd": "ls -l | wc", "s": "it's"}
    assert shell("${cmd:raw}", variables) == "ls -l | wc"
    assert shell("echo ${s:json}", variables) == "echo '\"it'\\''s\"'"
    assert shell("echo '${cmd:raw}'", variables) == "echo 'ls -l | wc'"
    for template in ("${nope:raw}", "${nope:json}"):
        assert "no variable 'nope'" in str(error_of(template))


def test_shell_context_escapes_for_each_quoting_context() -> None:
    variables = {"v": 'a\'b "$x" `y`'}
    assert shell("echo ${v}", variables) == "echo 'a'\\''b \"$x\" `y`'"
    assert shell("echo '${v}'", variables) == "echo 'a'\\''b \"$x\" `y`'"
    assert shell('echo "${v}"', variables) == 'echo "a\'b \\"\\$x\\" \\`y\\`"'
    assert shell("echo $(printf %s ${v})", variables) == "echo $(printf %s 'a'\\''b \"$x\" `y`')"
    assert shell("f=out-${item.name}.txt") == "f=out-'fix it'.txt"


def test_text_context_inserts_verbatim() -> None:
    variables = {"v": 'a\'b "$x"'}
    expected = 'echo \'a\'b "$x"\' "a\'b "$x"" # a\'b "$x"'
    assert text("echo '${v}' \"${v}\" # ${v}", variables) == expected


def test_shell_comments_are_left_as_written() -> None:
    template = "echo ${item.name} # uses ${item.nope} and ${item.name}\necho ${NAME}"
    assert shell(template) == "echo 'fix it' # uses ${item.nope} and ${item.name}\necho 'project'"
    with pytest.raises(InterpolationError):
        text(template)


def test_a_backslash_escaped_reference_is_literal_in_the_shell() -> None:
    assert shell("echo \\${item.nope} \\\\${item.name} \\\\\\${x.y}") == (
        "echo \\${item.nope} \\\\'fix it' \\\\\\${x.y}"
    )
    assert text("\\${item.name}") == "\\fix it"


def test_references_nested_in_text_left_for_the_shell() -> None:
    assert text("${HOME%${item.name}}") == "${HOME%fix it}"
    # a default is literal text up to the first '}', never a nested template
    assert text("${item.name:-${HOME}}") == "fix it}"
    assert text("${HOME:-${item.name}}") == "${item.name}"


def test_unsafe_places_are_errors_in_the_shell() -> None:
    error = error_of("echo ${HOME:-${item.name}}", "shell")
    assert str(error).startswith("cannot insert ${item.name} safely at column 14: ")
    assert "parameter expansion" in str(error)
    assert "integer" in str(error_of("echo $((${item.name} + 1))", "shell"))
    assert shell("echo $((${item.id} + 1))") == "echo $((7 + 1))"
    assert "never closes" in str(error_of("echo '${item.name}", "shell"))


def test_unresolved_references_outside_comments_are_errors_in_the_shell() -> None:
    assert "item has no field 'nope'" in str(error_of("# ok\necho ${item.nope}", "shell"))
    assert "item has no field" in str(error_of("echo ${item.nope} '", "shell"))


def test_heredocs() -> None:
    variables = {"v": "a $b `c` \\d", "end": "x\nEOF\nrm -rf ~", "a": "EO", "b": "F"}
    assert shell("cat <<EOF\n${v}\nEOF", variables) == "cat <<EOF\na \\$b \\`c\\` \\\\d\nEOF"
    assert shell("cat <<'EOF'\n${v}\nEOF", variables) == "cat <<'EOF'\na $b `c` \\d\nEOF"
    error = error_of("cat <<EOF\nok ${v}\n${end}\nEOF", "shell", variables)
    assert error.reference == "${end}"
    assert "would end the heredoc <<EOF early" in str(error)
    assert error_of("cat <<EOF\n${a}${b}\nEOF", "shell", variables).reference == "${b}"
    assert error_of("cat <<EOF\n${end} ${a}\nEOF", "shell", variables).reference == "${end}"
    assert "early" in str(error_of("cat <<EOF\n$(echo ${end})\nEOF", "shell", variables))
    assert shell("cat <<EOF\n${a}\n${b}\nEOF\n# ${end}", variables) == (
        "cat <<EOF\nEO\nF\nEOF\n# ${end}"
    )
    # in a heredoc body '#' starts no comment
    assert "early" in str(error_of("cat <<EOF\n# ${end}\nEOF", "shell", variables))
    assert shell("cat <<EOF\n${end:raw}\nEOF", variables) == "cat <<EOF\nx\nEOF\nrm -rf ~\nEOF"
    assert shell("cat <<-EOF\n\t${a}\nEOF", variables) == "cat <<-EOF\n\tEO\nEOF"
    assert "tab" in str(error_of("cat <<-EOF\n${v}\nEOF", "shell", {"v": "\tx"}))


def test_try_interpolate() -> None:
    assert try_interpolate("${item.id}", VARIABLES) == Success("7")
    result = try_interpolate("${item.nope}", VARIABLES, context="shell")
    assert isinstance(result, Failure)
    assert result.failure().reference == "${item.nope}"


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("${item.location.file} $HOME", {"item", "item.location", "item.location.file", "HOME"}),
        ("${validation.gaps}", {"validation", "validation.gaps"}),
        ("${item.tags[0].x} ${map.results}", {"item", "item.tags", "map", "map.results"}),
        ("${item.tags.0}", {"item", "item.tags"}),
        ("${#arr} ${!ref} ${1} $$ $1", {"arr", "ref"}),
        ("${HOME:-${item.id}} ${x:-$y}", {"HOME", "item", "item.id", "x", "y"}),
        ("${item.0abc} ${a.}", {"item", "a"}),
        ("\\${escaped} # ${comment}", {"escaped", "comment"}),
        ("${ok} ${unclosed", {"ok"}),
        ("plain text", set()),
    ],
)
def test_referenced_names(template: str, names: set[str]) -> None:
    assert referenced_names(template) == frozenset(names)


VALUES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@given(VALUES)
def test_text_context_inserts_any_value_exactly(value: str) -> None:
    assert interpolate("<${v}|$v>", {"v": value}) == f"<{value}|{value}>"


@given(VALUES)
def test_shell_words_split_back_to_the_value(value: str) -> None:
    """POSIX word splitting (``shlex``) of the interpolated command gives the value back."""
    command = interpolate("printf %s ${v} 'pre${v}post' x${v}y", {"v": value}, context="shell")
    assert shlex.split(command) == ["printf", "%s", value, f"pre{value}post", f"x{value}y"]


@given(st.text(), st.sampled_from(["shell", "text"]))
def test_any_template_gives_text_or_an_interpolation_error(template: str, context: str) -> None:
    variables = {"item": {"a": [1, "x"]}, "NAME": "n", "v": "a'b"}
    try:
        result = interpolate(template, variables, context="shell" if context == "shell" else "text")
    except InterpolationError as error:
        assert error.template == template
        assert 1 <= error.column <= len(template)
    else:
        assert isinstance(result, str)
