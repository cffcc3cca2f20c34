from __future__ import annotations

import pytest
from pydantic import ValidationError

from dashboard.overrides import OverrideChange, OverrideError, change_from_form

EMPTY = {
    "paused": None,
    "windows": None,
    "concurrency_cap": None,
    "bandwidth_cap_bps": None,
    "upload_now": False,
    "monthly_budget_bytes": None,
    "daily_cap_bytes": None,
    "note": "",
}


@pytest.mark.parametrize(
    ("form", "fields"),
    [
        ({}, EMPTY),
        ({"paused": "true"}, EMPTY | {"paused": True}),
        ({"paused": "false"}, EMPTY | {"paused": False}),
        ({"windows": "22:00-06:00, 12:00-13:00"}, EMPTY | {"windows": ["22:00-06:00", "12:00-13:00"]}),
        ({"windows": "22:00-06:00;12:00-13:00"}, EMPTY | {"windows": ["22:00-06:00", "12:00-13:00"]}),
        ({"windows": "always"}, EMPTY | {"windows": []}),
        ({"windows": "   "}, EMPTY),
        (
            {"max_concurrency": " 3 ", "bandwidth_bps": "125000"},
            EMPTY | {"concurrency_cap": 3, "bandwidth_cap_bps": 125000},
        ),
        ({"upload_now": "true", "note": "storm coming"}, EMPTY | {"upload_now": True, "note": "storm coming"}),
        (
            {"monthly_budget": "5 GB", "daily_cap": "1.5GiB"},
            EMPTY | {"monthly_budget_bytes": 5 * 10**9, "daily_cap_bytes": 3 * 2**29},
        ),
        (
            {"monthly_budget": "0", "daily_cap": "250000"},
            EMPTY | {"monthly_budget_bytes": 0, "daily_cap_bytes": 250000},
        ),
        (
            {"monthly_budget": "20 mb", "daily_cap": " 2 KiB "},
            EMPTY | {"monthly_budget_bytes": 20 * 10**6, "daily_cap_bytes": 2048},
        ),
    ],
)
def test_form_sets_the_whole_override(form: dict[str, str], fields: dict[str, object]) -> None:
    assert change_from_form(form).store_fields() == fields


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"paused": "perhaps"}, "paused"),
        ({"windows": "soon"}, "invalid window"),
        ({"windows": "22:00-24:00"}, "invalid window"),
        ({"max_concurrency": "two"}, "not a whole number"),
        ({"max_concurrency": "-1"}, "greater than or equal"),
        ({"max_concurrency": "65"}, "less than or equal"),
        ({"bandwidth_bps": "-3"}, "greater than or equal"),
    ],
)
def test_bad_form_is_refused(form: dict[str, str], message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        change_from_form(form)


def test_json_change_touches_only_given_fields() -> None:
    assert OverrideChange.model_validate({"paused": True}).store_fields() == {"paused": True}
    assert OverrideChange.model_validate({"max_concurrency": None}).store_fields() == {"concurrency_cap": None}
    assert OverrideChange.model_validate({}).store_fields() == {}
    with pytest.raises(ValidationError):
        OverrideChange.model_validate({"pause": True})


@pytest.mark.parametrize("text", ["5 GBs", "lots", "-1 GB", "GB", "1e400 GB", "2 PB"])
def test_a_budget_the_form_cannot_take_is_refused(text: str) -> None:
    with pytest.raises(OverrideError):
        change_from_form({"monthly_budget": text})
