"""``[policy.sites.<site>]`` metering keys in controller.toml → the policy's ``SiteBudget``s."""

from __future__ import annotations

import pytest

from controller.config import ConfigError, parse_config
from controller.policy.budget import SiteBudget

MINIMAL = {"mqtt": {"url": "mqtt://controller:pw@127.0.0.1:1883"}}


def test_site_budgets_and_the_fleet_wide_daily_cap() -> None:
    policy = {
        "agent_daily_cap_bytes": 2_000_000_000,
        "budget_overhead_fraction": 0.1,
        "sites": {
            "north": {
                "monthly_budget_bytes": 50_000_000_000,
                "month_start_day": 15,
                "timezone": "Europe/Berlin",
                "agent_daily_cap_bytes": 0,
            },
            "south": {"uplink_bps": 1000},
        },
    }
    config = parse_config({**MINIMAL, "policy": policy}, env={}).policy_config()
    assert config.budget_for("north") == SiteBudget(50_000_000_000, 15, "Europe/Berlin", 0, 0.1)
    assert config.budget_for("south") == SiteBudget(0, 1, "UTC", 2_000_000_000, 0.1)
    assert config.budget_for("elsewhere") == SiteBudget(agent_daily_bytes=2_000_000_000, overhead_fraction=0.1)
    assert config.timezone_for("north") == "Europe/Berlin"
    assert config.timezone_for("elsewhere") == "UTC"


def test_not_metered_by_default() -> None:
    config = parse_config(MINIMAL, env={}).policy_config()
    assert not config.budget_for("any").metered


@pytest.mark.parametrize(
    ("site", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"month_start_day": 29}, "month_start_day"),
        ({"monthly_budget_bytes": -1}, "monthly_budget_bytes"),
        ({"monthly_budget_bytes": 10**16}, "monthly_budget_bytes"),
        ({"agent_daily_cap_bytes": -5}, "agent_daily_cap_bytes"),
        ({"budget": 5}, "budget: unknown key"),
    ],
)
def test_bad_metering_is_a_clear_error(site: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**MINIMAL, "policy": {"sites": {"north": site}}}, env={})


@pytest.mark.parametrize(
    ("policy", "message"),
    [({"budget_overhead_fraction": 2}, "budget_overhead_fraction"), ({"budget_horizon_s": 1}, "budget_horizon_s")],
)
def test_bad_fleet_wide_metering(policy: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({**MINIMAL, "policy": policy}, env={})
