"""Pytest set-up for the plain-module tier: tests that need no Odoo.

Each addon keeps its ORM-free logic in ``lib/`` and its tests for that logic in
``tests/unit/``. Importing ``qtc_x.lib.y`` the normal way would run the addon's
``__init__.py``, which imports Odoo models; so every addon (and its ``tests``
package) is registered here as a bare namespace whose ``__init__`` is never run.
``odoo`` itself is made unimportable in this tier: a ``lib`` module that reaches for
the ORM fails loudly here instead of silently depending on it.
"""

import importlib.abc
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDONS = ROOT / "addons"


class _NoOdoo(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "odoo" or fullname.startswith("odoo."):
            raise ImportError(
                f"{fullname} imported from a plain module: lib/ must not import odoo"
            )


def _register_bare_package(name, path):
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    module.__package__ = name
    sys.modules[name] = module
    return module


def _register_addons():
    for addon_dir in sorted(p for p in ADDONS.iterdir() if p.is_dir()):
        if (
            not (addon_dir / "__manifest__.py").is_file()
            and not (addon_dir / "lib").is_dir()
        ):
            continue
        _register_bare_package(addon_dir.name, addon_dir)
        if (addon_dir / "tests").is_dir():
            _register_bare_package(f"{addon_dir.name}.tests", addon_dir / "tests")


sys.modules.pop("odoo", None)
sys.meta_path.insert(0, _NoOdoo())
_register_addons()


def pytest_ignore_collect(collection_path, config):
    """Collect only ``tests/unit`` inside addons; the rest are Odoo tests."""
    try:
        rel = collection_path.resolve().relative_to(ADDONS)
    except ValueError:
        return None
    parts = rel.parts
    if len(parts) >= 2 and parts[1] == "tests":
        return not (len(parts) == 2 or parts[2] == "unit")
    if len(parts) >= 2 and parts[1] != "tests" and collection_path.is_dir():
        return True
    return None
