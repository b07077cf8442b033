"""Masking secrets in text and in JSON-like values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pure.masking import MASK, mask, mask_value

# Small alphabets make secrets occur in texts, overlap each other and contain "*".
alphabet = st.sampled_from("ab*x")
texts = st.text(alphabet, max_size=30)
maskable = st.text(alphabet, min_size=1, max_size=6).filter(lambda secret: secret not in MASK)
secret_lists = st.lists(maskable, max_size=4)


def test_the_mask_is_three_stars() -> None:
    assert MASK == "***"


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("token=hunter2", ["hunter2"], "token=***"),
        ("hunter2 and hunter2", ["hunter2"], "*** and ***"),
        ("a=s3cret b=t0ken", ["s3cret", "t0ken"], "a=*** b=***"),
        ("nothing to hide", ["hunter2"], "nothing to hide"),
        ("nothing to hide", [], "nothing to hide"),
        ("", ["hunter2"], ""),
        # The longer secret is masked whole, not left as "***-suffix".
        ("key=abc-def", ["abc", "abc-def"], "key=***"),
        ("key=abc-def", ["abc-def", "abc"], "key=***"),
        # The empty secret would match everywhere; it is ignored.
        ("abc", [""], "abc"),
        ("abc", ["", "b"], "a***c"),
        # Duplicates change nothing.
        ("abc", ["b", "b"], "a***c"),
        # A secret the masks re-form is masked again: "pa" + "***" contains "pa**".
        ("papa**", ["pa**"], "****"),
        ("aa*", ["a*"], "*****"),
        # Masking one secret re-forms another that contains "*".
        ("aXc", ["a***c", "X"], "***"),
    ],
)
def test_mask(text: str, secrets: list[str], expected: str) -> None:
    assert mask(text, secrets) == expected


@pytest.mark.parametrize("secret", ["*", "**", "***"])
def test_a_secret_inside_the_mask_cannot_be_hidden_and_is_left(secret: str) -> None:
    assert mask(f"x{secret}y", [secret]) == f"x{secret}y"
    assert mask("x*y hunter2", [secret, "hunter2"]) == "x*y ***"


def test_a_long_run_of_stars_is_a_maskable_secret() -> None:
    assert mask("********", ["****"]) == "***"


def test_overlapping_secrets_of_equal_length_mask_the_same_way_in_any_order() -> None:
    assert mask("abcde", ["abc", "cde"]) == mask("abcde", ["cde", "abc"]) == "***de"


def test_secrets_may_be_any_iterable_used_once() -> None:
    assert mask("a b", iter(["a", "b"])) == "*** ***"
    assert mask_value(["a b"], iter(["a", "b"])) == ["*** ***"]


@given(texts, secret_lists)
@example("papa**", ["pa**"])
@example("aXc", ["a***c", "X"])
def test_no_secret_is_left_in_the_output(text: str, secrets: list[str]) -> None:
    masked = mask(text, secrets)
    for secret in secrets:
        assert secret not in masked


@given(texts, secret_lists)
def test_masking_is_idempotent(text: str, secrets: list[str]) -> None:
    once = mask(text, secrets)
    assert mask(once, secrets) == once


@given(texts, secret_lists)
def test_text_without_any_secret_is_unchanged(text: str, secrets: list[str]) -> None:
    if not any(secret in text for secret in secrets):
        assert mask(text, secrets) == text


@given(st.text("ab", min_size=1, max_size=4), st.text(st.sampled_from("ab-"), max_size=8))
def test_a_secret_containing_another_is_masked_whole(inner: str, around: str) -> None:
    outer = f"{inner}-{inner}"
    assert mask(f"[{outer}]", [inner, outer]) == "[***]"
    assert mask(f"[{outer}]{around}", [inner, outer]) == "[***]" + mask(around, [inner, outer])


@given(st.text(st.sampled_from("ab-"), max_size=20), st.lists(st.text("ab", min_size=1)))
def test_star_free_secrets_keep_the_text_between_them(text: str, secrets: list[str]) -> None:
    # "-" is never part of a secret, so every "-" of the text survives.
    assert mask(text, secrets).count("-") == text.count("-")


def test_mask_value_masks_strings_at_every_depth_and_in_keys() -> None:
    value: dict[Any, Any] = {
        "token": "hunter2",
        "hunter2-key": ["a hunter2 b", ("hunter2",), {"deep": "hunter2!"}],
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        7: "int key hunter2",
    }
    assert mask_value(value, ["hunter2"]) == {
        "token": MASK,
        "***-key": ["a *** b", [MASK], {"deep": "***!"}],
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        7: "int key ***",
    }


def test_mask_value_does_not_change_its_input() -> None:
    value = {"k": ["hunter2"]}
    mask_value(value, ["hunter2"])
    assert value == {"k": ["hunter2"]}


@pytest.mark.parametrize("secrets", [[], [""], ["*"], ["", "**", "***"]])
def test_mask_value_without_maskable_secrets_returns_the_value_itself(secrets: list[str]) -> None:
    value = {"k": ("hunter2", "*")}
    assert mask_value(value, secrets) is value


@pytest.mark.parametrize("scalar", [None, 3, 2.5, False, "hunter2"])
def test_mask_value_on_a_scalar(scalar: Any) -> None:
    expected = MASK if scalar == "hunter2" else scalar
    assert mask_value(scalar, ["hunter2"]) == expected


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=12,
)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in strings_in(key) + strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


@given(json_like, secret_lists)
def test_mask_value_leaves_no_secret_in_any_string(value: Any, secrets: list[str]) -> None:
    for text in strings_in(mask_value(value, secrets)):
        for secret in secrets:
            assert secret not in text


@given(st.lists(texts, max_size=5), secret_lists)
def test_mask_value_of_a_list_is_mask_of_each_string(items: list[str], secrets: list[str]) -> None:
    assert mask_value(items, secrets) == [mask(item, secrets) for item in items]
