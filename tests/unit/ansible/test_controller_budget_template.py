"""The central role's controller.toml template writes the metered-link keys the controller reads (its [policy]
part rendered with Jinja2, the way Ansible renders it, then parsed by the controller's own configuration)."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import jinja2
import yaml

from controller.config import parse_config
from controller.policy.budget import SiteBudget
from tests.unit.ansible.plugins import ROLES

TEMPLATE = ROLES / "central" / "templates" / "controller.toml.j2"


def policy_part(policy: dict[str, Any]) -> str:
    source = TEMPLATE.read_text()
    start = source.index("[policy]")
    end = source.index("{% endfor %}", start) + len("{% endfor %}")
    env = jinja2.Environment(trim_blocks=True, autoescape=False)  # TOML, not HTML
    env.filters["to_json"] = json.dumps
    return env.from_string(source[start:end]).render(central_controller_policy=policy)


def test_site_budgets_reach_the_controller() -> None:
    defaults = yaml.safe_load((ROLES / "central" / "defaults" / "main.yml").read_text())["central_controller_policy"]
    lte = {"monthly_budget_bytes": 50_000_000_000, "month_start_day": 15, "timezone": "Europe/Berlin"}
    policy = {**defaults, "agent_daily_cap_bytes": 10**9, "sites": {"lte": lte, "garden": {"uplink_bps": 5}}}
    data = tomllib.loads(policy_part(policy))
    config = parse_config({"mqtt": {"url": "mqtt://a:b@h:1"}, **data}, env={}).policy_config()
    assert config.budget_for("lte") == SiteBudget(50_000_000_000, 15, "Europe/Berlin", 10**9, 0.05, 300.0)
    assert config.budget_for("garden") == SiteBudget(agent_daily_bytes=10**9, overhead_fraction=0.05)
    assert config.uplink_for("garden") == 5
