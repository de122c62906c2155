#!/usr/bin/env python3
"""Keep a database for the developer's inner loop (Odoo tests under pytest).

    python3 tests/dev_db.py [--db qtc_dev] [-u qtc_tax,qtc_stripe] [--reset]

Writes ``.qtc/odoo-dev.conf``, the Odoo configuration file the tests read
(database, addons path, the test encryption key of ``.odoo-ci.yml``, no cron
workers, screenshots under ``.qtc/screenshots``), then:

- creates the database with every installable qtc addon and the demo data when
  it is missing or lacks one of them (several minutes, once);
- ``-u ADDONS``: updates those addons (after changing their fields, views or
  data; a change of Python methods alone needs no update);
- ``--reset``: drops the database first.

It then prints the command that runs one test, file or addon against it in
seconds, e.g.::

    TZ=UTC python3 -m pytest -c tests/pytest-odoo.ini \\
        --odoo-config .qtc/odoo-dev.conf addons/qtc_tax/tests/test_outage.py

The test command (``tests/run.py``) never uses this database: it creates a
fresh one for each run.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # the test command: configuration, addons, Odoo's addons path

CONF = run.ROOT / ".qtc" / "odoo-dev.conf"


def installed_addons(config, dbname, addons):
    """The qtc addons installed in ``dbname`` (empty when it does not exist)."""
    import psycopg2

    params = {
        key: value
        for key, value in (
            ("host", os.environ.get("QTC_DB_HOST") or config.get("db_host")),
            ("port", os.environ.get("QTC_DB_PORT") or config.get("db_port")),
            ("user", os.environ.get("QTC_DB_USER") or config.get("db_user")),
        )
        if value
    }
    try:
        conn = psycopg2.connect(dbname=dbname, **params)
    except psycopg2.OperationalError:
        return set()
    try:
        with conn.cursor() as cr:
            cr.execute(
                "SELECT name FROM ir_module_module "
                "WHERE state = 'installed' AND name = ANY(%s)",
                (list(addons),),
            )
            return {row[0] for row in cr.fetchall()}
    except psycopg2.Error:
        return set()
    finally:
        conn.close()


def write_conf(config, dbname):
    lines = [
        "[options]",
        f"db_name = {dbname}",
        f"dbfilter = ^{dbname}$",
        f"addons_path = {run.odoo_addons_path()}",
        f"qtc_encryption_key = {config.get('test_encryption_key', '')}",
        f"http_port = {os.environ.get('QTC_HTTP_PORT') or config.get('http_port')}",
        "max_cron_threads = 0",
        f"without_demo = {'all' if config.get('without_demo') else 'False'}",
        f"screenshots = {run.ROOT / '.qtc' / 'screenshots'}",
        "log_level = warn",
    ]
    args = run.db_args(config)
    for flag, value in zip(args[::2], args[1::2], strict=True):
        lines.append(f"{flag.lstrip('-')} = {value}")
    CONF.parent.mkdir(exist_ok=True)
    CONF.write_text("\n".join(lines) + "\n")


def odoo(*args):
    subprocess.run(
        [sys.executable, "-m", "odoo", "-c", str(CONF), *args, "--stop-after-init"],
        cwd="/",
        env={**os.environ, "TZ": "UTC"},
        check=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="qtc_dev")
    parser.add_argument("-u", "--update", help="comma-separated addons to update")
    parser.add_argument("--reset", action="store_true")
    args = parser.parse_args()
    ok, why = run.odoo_importable()
    if not ok:
        sys.exit(f"tests/dev_db.py: {why}")
    config = run.load_config()
    addons = run.discover_addons(config)
    write_conf(config, args.db)
    print(f"wrote {CONF.relative_to(run.ROOT)} (database {args.db})")
    if args.reset:
        run.drop_db(args.db, config)
    missing = set(addons) - installed_addons(config, args.db, addons)
    if missing:
        print(f"installing {', '.join(addons)} with demo data into {args.db} ...")
        odoo("-d", args.db, "-i", ",".join(addons))
    if args.update:
        print(f"updating {args.update} in {args.db} ...")
        odoo("-d", args.db, "-u", args.update)
    print(
        "\nRun one test, file or addon against it:\n"
        "  TZ=UTC python3 -m pytest -c tests/pytest-odoo.ini "
        f"--odoo-config {CONF.relative_to(run.ROOT)} "
        "addons/qtc_tax/tests/test_outage.py[::TestClass::test_name]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
