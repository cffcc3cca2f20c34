"""Load a role's Python plugin (filter, module) by its path, as Ansible would, without installing it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROLES = Path(__file__).resolve().parents[3] / "ansible" / "roles"


def load_plugin(relative: str) -> ModuleType:
    """``relative`` is the path under ``ansible/roles``, e.g. ``central/library/edgefleet_pki.py``."""
    path = ROLES / relative
    spec = importlib.util.spec_from_file_location(f"edgefleet_plugin_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
