"""Guard: ``lib/`` modules of every addon stay importable without Odoo.

They must not import ``odoo`` (nor ``openerp``) and must not reach into an
addon by its absolute name (another connector, or their own addon, which under
Odoo lives at ``odoo.addons.<name>``): relative imports inside ``lib/`` are the
only way between plain modules. The check reads the source with ``ast``, so it
also covers modules no unit test imports.
"""

import ast
from pathlib import Path

import pytest

# tests/unit/test_lib_purity.py -> tests -> <addon> -> addons -> repository
ADDONS_DIR = Path(__file__).resolve().parents[3]
REPO_ROOT = ADDONS_DIR.parent
FORBIDDEN_ROOTS = {"odoo", "openerp"}
DYNAMIC_IMPORTERS = {"__import__", "import_module"}


def addon_names():
    """Every addon folder name in the repository."""
    return {path.name for path in ADDONS_DIR.iterdir() if path.is_dir()}


def lib_modules():
    """Every ``addons/*/lib/**/*.py`` file, sorted for stable test ids."""
    return sorted(ADDONS_DIR.glob("*/lib/**/*.py"))


def forbidden_imports(source, filename="<source>", addons=frozenset()):
    """The forbidden imports in ``source``, as ``"line: module"`` strings.

    Absolute imports of ``odoo``/``openerp`` or of any name in ``addons`` are
    forbidden, as are ``__import__("odoo...")`` and
    ``importlib.import_module("odoo...")`` with a literal name. Relative
    imports (``from . import x``) are allowed whatever they are called.
    """
    forbidden = FORBIDDEN_ROOTS | set(addons)
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call):
            func = node.func
            called = getattr(func, "id", None) or getattr(func, "attr", None)
            if (
                called in DYNAMIC_IMPORTERS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
        found.extend(
            f"{node.lineno}: {name}"
            for name in names
            if name.split(".")[0] in forbidden
        )
    return found


def test_repository_is_located():
    assert (REPO_ROOT / "conftest.py").is_file()
    assert ADDONS_DIR.name == "addons"
    assert "qtc_connector_base" in addon_names()


def test_the_walk_finds_this_addons_lib_modules():
    # Without this, a wrong glob would make the guard below pass vacuously.
    found = {path.relative_to(ADDONS_DIR).as_posix() for path in lib_modules()}
    for module in (
        "errors",
        "backoff",
        "signature",
        "secretbox",
        "redact",
        "ratelimit",
        "http",
    ):
        assert f"qtc_connector_base/lib/{module}.py" in found


@pytest.mark.parametrize(
    "path",
    lib_modules(),
    ids=lambda path: path.relative_to(ADDONS_DIR).as_posix(),
)
def test_lib_module_imports_neither_odoo_nor_an_addon(path):
    source = path.read_text(encoding="utf-8")
    assert forbidden_imports(source, str(path), addon_names()) == []


# -- the checker itself: it must catch what it claims to ------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import odoo", ["1: odoo"]),
        ("import odoo.fields as f", ["1: odoo.fields"]),
        ("import json, odoo", ["1: odoo"]),
        ("from odoo import fields", ["1: odoo"]),
        ("from odoo.tools import float_round", ["1: odoo.tools"]),
        ("from odoo.addons.qtc_stripe import x", ["1: odoo.addons.qtc_stripe"]),
        ("import openerp", ["1: openerp"]),
        ("def f():\n    import odoo\n", ["2: odoo"]),
        ("try:\n    import odoo\nexcept ImportError:\n    pass\n", ["2: odoo"]),
        ("from qtc_stripe.lib import money", ["1: qtc_stripe.lib"]),
        ("import qtc_connector_base.lib.http", ["1: qtc_connector_base.lib.http"]),
        ("__import__('odoo')", ["1: odoo"]),
        ("import importlib\nimportlib.import_module('odoo.api')", ["2: odoo.api"]),
        ("from importlib import import_module\nimport_module('odoo')", ["2: odoo"]),
    ],
)
def test_checker_flags_forbidden_imports(source, expected):
    addons = {"qtc_stripe", "qtc_connector_base"}
    assert forbidden_imports(source, addons=addons) == expected


@pytest.mark.parametrize(
    "source",
    [
        "import json\nimport requests\nfrom cryptography.fernet import Fernet",
        "from . import money",
        "from .errors import RetryableError",
        "from .odoo import shim",  # relative: a sibling module, not Odoo
        "from .. import const",
        "import odoorpc",  # another package whose name starts alike
        "import odoo_helpers",
        "import_module(name)",  # not a literal: cannot be judged statically
        "text = 'import odoo'",
    ],
)
def test_checker_allows_plain_imports(source):
    addons = {"qtc_stripe", "qtc_connector_base"}
    assert forbidden_imports(source, addons=addons) == []
