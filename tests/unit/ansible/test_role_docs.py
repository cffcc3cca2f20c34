"""Every variable a role defines in ``defaults/main.yml`` is documented, by its full name, in the role's README."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "ansible" / "roles"


@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if (p / "defaults/main.yml").exists()))
def test_every_default_is_documented(role: str) -> None:
    defaults = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text())
    readme = (ROLES / role / "README.md").read_text()
    assert defaults, f"{role} has no defaults"
    missing = [name for name in defaults if f"`{name}`" not in readme]
    assert missing == [], f"{role}/README.md does not document {missing}"


@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if p.is_dir()))
def test_every_default_carries_the_role_prefix(role: str) -> None:
    defaults = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text()) or {}
    assert [name for name in defaults if not name.startswith(f"{role}_")] == []
