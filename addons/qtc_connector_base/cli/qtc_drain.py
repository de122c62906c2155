"""``odoo qtc-drain``: run the QTC job queue from the command line.

    python3 -m odoo --addons-path=<paths> qtc-drain -d <db> [-c <conf>]
        [--max-seconds 3600] [--recover]

Runs ready jobs with the same worker loop as the cron workers (one transaction per
job, SKIP LOCKED claims), so it is safe next to running servers. Prints progress
and exits when no job is ready or the time budget is spent. ``--addons-path`` must
come first so Odoo finds this command.
"""

import argparse
import time

import odoo
from odoo.cli.command import Command


class QtcDrain(Command):
    """Run ready QTC jobs until the queue is empty or time runs out."""

    name = "qtc-drain"

    def run(self, cmdargs):
        parser = argparse.ArgumentParser(prog="odoo qtc-drain", description=__doc__)
        parser.add_argument("-d", "--database", required=True)
        parser.add_argument("-c", "--config")
        parser.add_argument("--max-seconds", type=float, default=3600)
        parser.add_argument(
            "--recover",
            action="store_true",
            help="first take back jobs left started by dead workers",
        )
        args, rest = parser.parse_known_args(cmdargs)
        odoo_args = ["-d", args.database, *rest]
        if args.config:
            odoo_args = ["-c", args.config, *odoo_args]
        odoo.tools.config.parse_config(odoo_args)
        registry = odoo.modules.registry.Registry(args.database)
        deadline = time.monotonic() + args.max_seconds
        total = 0
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            jobs = env["qtc.job"]
            if args.recover:
                recovered = jobs._qtc_recover_stale()
                print(f"recovered {len(recovered)} job(s) from dead workers")
            while time.monotonic() < deadline:
                ran = jobs._qtc_run_worker(
                    max_seconds=min(30, max(1, deadline - time.monotonic()))
                )
                total += ran
                cr.rollback()  # a fresh snapshot: the workers committed on their own
                ready = jobs.search_count(
                    [("state", "=", "pending"), ("eta", "=", False)]
                )
                later = jobs.search_count(
                    [("state", "=", "pending"), ("eta", "!=", False)]
                )
                print(
                    f"ran {total} job(s); {ready} ready, {later} waiting for a retry",
                    flush=True,
                )
                if not ran:
                    break
        return 0
