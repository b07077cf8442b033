"""Job events round-trip through cattrs, tagged by ``kind``, and through JSON."""

from __future__ import annotations

import json
import typing
from typing import Any

import cattrs
import pytest

from pure.job_events import (
    ItemFailed,
    ItemMerged,
    ItemRetried,
    ItemSkipped,
    ItemStarted,
    ItemSucceeded,
    JobEvent,
    JobPlanned,
    PhaseFinished,
    PhaseStarted,
    configure_event_converter,
    structure_event,
    unstructure_event,
)

EVERY_EVENT: list[Any] = [
    JobPlanned(("a", "b"), at=1.5),
    ItemStarted("a", 1, at=2.0),
    ItemSucceeded("a", ("c1", "c2"), "output\nlines", at=3.25),
    ItemMerged("a", "abc123", at=4.0),
    ItemFailed("b", "exit status 1", at=5.0),
    ItemRetried("b"),
    ItemSkipped("b", "error policy: skip"),
    PhaseStarted("map", at=0.0),
    PhaseFinished("map", success=False),
]


def test_every_event_type_is_listed() -> None:
    members = {
        cls for alias in typing.get_args(JobEvent) for cls in typing.get_args(alias) or (alias,)
    }
    assert members == {type(event) for event in EVERY_EVENT}


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: type(e).__name__)
def test_tagged_round_trip_through_json(event: JobEvent) -> None:
    data = unstructure_event(event)
    assert data["kind"] == type(event).KIND
    assert structure_event(json.loads(json.dumps(data))) == event


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: type(e).__name__)
def test_plain_cattrs_round_trip(event: JobEvent) -> None:
    assert cattrs.structure(cattrs.unstructure(event), type(event)) == event


def test_unstructured_shape() -> None:
    assert unstructure_event(ItemSucceeded("a", ("c",))) == {
        "kind": "item-succeeded",
        "item_key": "a",
        "commits": ["c"],
        "output": None,
        "at": None,
    }


def test_any_converter_can_be_configured() -> None:
    converter = cattrs.Converter()
    configure_event_converter(converter)
    event = ItemMerged("a", "m")
    data = converter.unstructure(event, JobEvent)
    assert data["kind"] == "item-merged"
    assert converter.structure(data, JobEvent) == event  # type: ignore[arg-type]


def test_data_that_is_no_event_is_refused() -> None:
    with pytest.raises(ValueError, match="not a job event: unknown kind 'item-vanished'"):
        structure_event({"kind": "item-vanished", "item_key": "a"})
    with pytest.raises(ValueError, match="unknown kind None"):
        structure_event({"item_key": "a"})
    with pytest.raises(
        ValueError, match=r"kind 'item-merged': required field missing @ \$\.commit"
    ):
        structure_event({"kind": "item-merged", "item_key": "a"})
    with pytest.raises(ValueError, match=r"invalid value for type, expected int @ \$\.attempt"):
        structure_event({"kind": "item-started", "item_key": "a", "attempt": "one"})
