#!/usr/bin/env python3
"""Run every test of the QTC suite: ``python3 tests/run.py``.

Tiers, in order (settings in ``.odoo-ci.yml``):

1. static: ruff lint and format check, manifest checks, XML well-formedness,
   access CSV headers, and the guard that ``lib/`` modules never import odoo;
2. unit: the plain-module tests (``addons/*/tests/unit``, ``tests/unit``) under
   pytest, with Odoo made unimportable;
3. odoo: a fresh database, every qtc addon installed, and every Odoo test of
   the suite run by Odoo's own runner (``--test-enable --test-tags``); the
   browser tests (tours) need headless Chromium, installed first from the
   system's packages (Debian ``chromium``) when no Chrome is found, and their
   screenshots are written under ``.qtc/screenshots``;
4. fault: the fault suite (``tests/fault/run_faults.py``) at its small default
   size: a real Odoo server with two workers under load, workers killed,
   connections terminated, redeliveries, an outage, hostile inputs.

Where ``python3`` cannot import Odoo 18 the third and fourth tiers are skipped
with one clear line saying why; the first two still run. Exit status is
non-zero when any tier that ran failed. The last line is ``total: N passed, N failed``.

Options: ``--only static|unit|odoo|fault`` (repeatable), ``--keep-db`` keeps the test
database for inspection, ``--db NAME`` names it, ``--tags`` narrows Odoo tests
(Odoo's ``--test-tags`` syntax). The environment variables ``QTC_HTTP_PORT``,
``QTC_FAULT_HTTP_PORT`` and ``QTC_FAULT_DB`` override the ports and the fault
database of ``.odoo-ci.yml``, so two checkouts can run their tests at once.
"""

import argparse
import ast
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
ADDONS = ROOT / "addons"
VERSION_RE = re.compile(r"^18\.0\.\d+\.\d+\.\d+$")
ACCESS_HEADER = [
    "id",
    "name",
    "model_id:id",
    "group_id:id",
    "perm_read",
    "perm_write",
    "perm_create",
    "perm_unlink",
]


def load_config():
    import yaml

    with open(ROOT / ".odoo-ci.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def discover_addons(config):
    listed = config.get("addons", "auto")
    if listed == "auto":
        return sorted(
            p.parent.name
            for p in ADDONS.glob("*/__manifest__.py")
            if ast.literal_eval(p.read_text()).get("installable", True)
        )
    return list(listed)


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.lines = []

    def add(self, tier, passed, failed, note=""):
        self.passed += passed
        self.failed += failed
        self.lines.append(f"{tier:<7} {passed:>5} passed {failed:>4} failed  {note}")


# --------------------------------------------------------------------- static


def check_manifests(addons):
    problems = []
    for name in addons:
        addon = ADDONS / name
        try:
            manifest = ast.literal_eval((addon / "__manifest__.py").read_text())
        except (SyntaxError, ValueError) as exc:
            problems.append(f"{name}: manifest is not a literal dict ({exc})")
            continue
        if not VERSION_RE.match(manifest.get("version", "")):
            problems.append(f"{name}: version must be 18.0.x.y.z")
        for key in ("name", "license", "depends", "author"):
            if key not in manifest:
                problems.append(f"{name}: manifest lacks {key!r}")
        for rel in manifest.get("data", []) + manifest.get("demo", []):
            if not (addon / rel).is_file():
                problems.append(f"{name}: manifest lists missing file {rel}")
        if not (addon / "pyproject.toml").is_file():
            problems.append(f"{name}: no pyproject.toml for packaging")
        access = addon / "security" / "ir.model.access.csv"
        if access.is_file():
            with open(access, newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
            if header != ACCESS_HEADER:
                problems.append(f"{name}: ir.model.access.csv header is {header}")
    return problems


def check_xml(addons):
    problems = []
    for name in addons:
        for path in sorted((ADDONS / name).rglob("*.xml")):
            if "static" in path.parts:
                continue
            try:
                ElementTree.parse(path)
            except ElementTree.ParseError as exc:
                problems.append(f"{path.relative_to(ROOT)}: {exc}")
    return problems


def check_lib_purity():
    """``lib/`` modules may import the standard library and third-party
    packages, never odoo (the unit tier also enforces this at import time)."""
    problems = []
    for path in sorted(ADDONS.glob("*/lib/**/*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: must stay inside lib/
                    if node.level > 1 or (node.module or "").startswith(".."):
                        names = ["(relative import leaving lib/)"]
                    continue
                names = [node.module or ""]
            for imported in names:
                if imported.split(".")[0] == "odoo" or imported.startswith("("):
                    problems.append(f"{path.relative_to(ROOT)}: imports {imported}")
    return problems


def run_static(addons, tally):
    print("== static checks", flush=True)
    failed = 0
    passed = 0
    ruff = [sys.executable, "-m", "ruff"]
    for label, cmd in (
        ("ruff check", [*ruff, "check", "."]),
        ("ruff format --check", [*ruff, "format", "--check", "."]),
    ):
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            failed += 1
            print(f"FAIL {label}\n{proc.stdout}{proc.stderr}")
        else:
            passed += 1
            print(f"ok   {label}")
    for label, check in (
        ("manifests", lambda: check_manifests(addons)),
        ("xml well-formed", lambda: check_xml(addons)),
        ("lib/ never imports odoo", check_lib_purity),
    ):
        problems = check()
        if problems:
            failed += 1
            print(f"FAIL {label}")
            for problem in problems:
                print(f"     {problem}")
        else:
            passed += 1
            print(f"ok   {label}")
    tally.add("static", passed, failed)


# ----------------------------------------------------------------------- unit


def run_unit(tally):
    print("== unit tests (no Odoo)", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    out = proc.stdout + proc.stderr
    print(out.rstrip())
    passed = sum(int(n) for n in re.findall(r"(\d+) passed", out.splitlines()[-1]))
    failed = sum(
        int(n) for n in re.findall(r"(\d+) (?:failed|errors?)", out.splitlines()[-1])
    )
    if proc.returncode not in (0, 5) and not failed:
        failed = 1  # pytest broke before counting (collection or usage error)
    tally.add("unit", passed, failed)


# ----------------------------------------------------------------------- odoo


def odoo_importable():
    probe = (
        "import odoo.release as r, sys; sys.exit(0 if r.version_info[0] == 18 else 3)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd="/"
    )
    if proc.returncode == 0:
        return True, ""
    if proc.returncode == 3:
        return False, "python3 imports an Odoo that is not 18.0"
    return False, "python3 cannot import odoo (install Odoo 18.0, see README.md)"


def odoo_addons_path():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import odoo, os; print(os.path.dirname(odoo.__file__))",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    package = Path(proc.stdout.strip())
    paths = [package / "addons"]
    if (package.parent / "addons").is_dir():  # a source checkout
        paths.append(package.parent / "addons")
    paths.append(ADDONS)
    return ",".join(str(p) for p in paths)


def db_args(config):
    args = []
    for key, flag in (
        ("db_host", "--db_host"),
        ("db_port", "--db_port"),
        ("db_user", "--db_user"),
    ):
        value = os.environ.get(f"QTC_{key.upper()}") or config.get(key)
        if value:
            args += [flag, str(value)]
    return args


def drop_db(name, config):
    subprocess.run(
        [sys.executable, "-m", "odoo", "db", *db_args(config), "drop", name],
        capture_output=True,
        cwd="/",
        env={**os.environ, "TZ": "UTC"},
    )


# The Chrome binaries Odoo 18's browser tests look for on Linux, in its order
# (odoo/tests/common.py, _find_executable): the first found on PATH is used.
CHROME_NAMES = ("google-chrome", "chromium", "chromium-browser", "google-chrome-stable")


def find_chrome():
    for name in CHROME_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium():
    """A Chrome binary for Odoo's browser tests, installed from the system's
    packages (Debian ``chromium``) when none is found.

    :returns: ``(path, None)``, or ``(None, why)`` when it cannot be had
    """
    found = find_chrome()
    if found:
        print(f"browser for the tours: {found}", flush=True)
        return found, None
    print(
        "No Chrome or Chromium for the browser tests (tours): installing the "
        "system package 'chromium' (apt-get) ...",
        flush=True,
    )
    if not shutil.which("apt-get"):
        return None, "no apt-get here: install Chromium or Google Chrome by hand"
    prefix = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            return None, "apt-get needs root and sudo is missing"
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        proc = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, env=env
        )
        if proc.returncode:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return None, f"'{' '.join(command)}' failed: {' / '.join(tail)}"
    found = find_chrome()
    if not found:
        return None, "the package 'chromium' installed no chromium binary on PATH"
    print(f"installed Chromium for the tours: {found}", flush=True)
    return found, None


def run_odoo(addons, config, args, tally):
    print("== odoo tests", flush=True)
    ok, why = odoo_importable()
    if not ok:
        print(f"SKIPPED the Odoo tier: {why}.")
        tally.lines.append(f"odoo    skipped: {why}")
        return
    _chrome, browser_problem = ensure_chromium()
    if browser_problem:
        # The tours fail rather than skip (QTC_REQUIRE_BROWSER below).
        print(f"FAIL browser for the tours: {browser_problem}", flush=True)
        tally.add("browser", 0, 1, browser_problem)
    dbname = args.db or config.get("database", "qtc_test")
    drop_db(dbname, config)
    tags = args.tags or ",".join(f"/{name}" for name in addons)
    logfile = ROOT / ".qtc" / "odoo-test.log"
    logfile.parent.mkdir(exist_ok=True)
    screenshots = ROOT / ".qtc" / "screenshots"
    cmd = [
        sys.executable,
        "-m",
        "odoo",
        *db_args(config),
        "-d",
        dbname,
        "--addons-path",
        odoo_addons_path(),
        "-i",
        ",".join(addons),
        "--test-enable",
        "--test-tags",
        tags,
        "--stop-after-init",
        "--http-port",
        str(os.environ.get("QTC_HTTP_PORT") or config.get("http_port", 8169)),
        "--max-cron-threads",
        "0",
        "--log-level",
        "test",
        "--logfile",
        "",
        "--screenshots",
        str(screenshots),
    ]
    if config.get("without_demo", False):
        cmd.append("--without-demo=all")
    started = time.monotonic()
    env = {**os.environ, "TZ": "UTC", "QTC_REQUIRE_BROWSER": "1"}
    env.setdefault("QTC_ENCRYPTION_KEY", config.get("test_encryption_key", ""))
    with open(logfile, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            cwd="/",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        errors = []
        stats = None
        started_tests = 0
        for line in proc.stdout:
            log.write(line)
            match = re.search(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests", line)
            if match:
                stats = tuple(int(x) for x in match.groups())
            if re.search(r" (ERROR|CRITICAL) ", line):
                errors.append(line.rstrip())
                print(line.rstrip(), flush=True)
            elif " Starting Test" in line:
                started_tests += 1
                if started_tests % 50 == 0:
                    print(f"  ... {started_tests} Odoo tests run", flush=True)
            elif re.search(r"modules loaded|post tests|tests when loading", line):
                print(line.rstrip()[24:], flush=True)
        rc = proc.wait()
    elapsed = time.monotonic() - started
    if not args.keep_db:
        drop_db(dbname, config)
    if stats is None:
        print(f"Odoo exited {rc} without running tests; log: {logfile}")
        tally.add("odoo", 0, 1, f"no test report ({elapsed:.0f}s)")
        return
    failures, error_count, total = stats
    bad = failures + error_count
    if not bad and (rc or errors):
        bad = 1  # an install error or an ERROR log line outside a test
    tally.add(
        "odoo", total - failures - error_count, bad, f"({elapsed:.0f}s, {logfile.name})"
    )
    tours = sorted(screenshots.glob("tours/*/*.png"))
    if tours:
        print(f"tour screenshots: {len(tours)} in {screenshots / 'tours'}")


# ---------------------------------------------------------------------- fault


def run_fault(config, tally):
    """The fault suite at its default (small) size, in its own database."""
    print("== fault suite", flush=True)
    ok, why = odoo_importable()
    if not ok:
        print(f"SKIPPED the fault tier: {why}.")
        tally.lines.append(f"fault   skipped: {why}")
        return
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "fault" / "run_faults.py"),
        "--db",
        str(
            os.environ.get("QTC_FAULT_DB") or config.get("fault_database", "qtc_fault")
        ),
        "--port",
        str(
            os.environ.get("QTC_FAULT_HTTP_PORT") or config.get("fault_http_port", 8189)
        ),
    ]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TZ": "UTC"}
    )
    out = proc.stdout + proc.stderr
    print(out.rstrip())
    rows = re.findall(r"^\S.{33} +\d+ +\d+ +\d+ +\d+ +\d+  (ok|FAILED)$", out, re.M)
    passed = rows.count("ok")
    failed = rows.count("FAILED")
    if proc.returncode and not failed:
        failed = 1  # the suite broke before its table
    tally.add("fault", passed, failed, f"({time.monotonic() - started:.0f}s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", action="append", choices=["static", "unit", "odoo", "fault"]
    )
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--db")
    parser.add_argument("--tags")
    args = parser.parse_args()
    config = load_config()
    tiers = args.only or config.get("tiers") or ["static", "unit", "odoo", "fault"]
    addons = discover_addons(config)
    tally = Tally()
    if "static" in tiers:
        run_static(addons, tally)
    if "unit" in tiers:
        run_unit(tally)
    if "odoo" in tiers:
        run_odoo(addons, config, args, tally)
    if "fault" in tiers:
        run_fault(config, tally)
    print("== summary")
    for line in tally.lines:
        print(line)
    print(f"total: {tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
