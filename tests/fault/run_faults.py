#!/usr/bin/env python3
"""Fault suite: the QTC addons under failures, against a real Odoo server.

    python3 tests/fault/run_faults.py [--full] [--kills N] [--outage S]
                                      [--only kill9,pgterm,redelivery,outage,
                                              taxoutage,hostile]
                                      [--db qtc_fault] [--port 8189] [--reuse-db]
                                      [--keep-db]

One database with every QTC addon and the demo data; one Odoo server with two
HTTP workers and two cron workers (the job queue), started through
``docker/odoo_local.py`` with the Salesforce stand-in's CA trusted. The demo
engagement (``tests/e2e/demo.py``) is played first; then, each scenario
checked against a ledger of what its clients sent and were acknowledged:

newcomer    Odoo restarted with REQUESTS_CA_BUNDLE naming a bundle without the
            demo stand-in's CA (the newcomer's corporate machine, before
            docker/run.sh added the CA to it): the demo driver stops at once
            with the SSL certificate failure instead of waiting out its
            timeout; restarted with the bundle ``docker/run.sh`` builds from
            that preset one, the same opportunity becomes its order. (The
            whole suite runs on a server started with that bundle.)
kill9       signed PSA time pushes and Stripe payments from several clients
            (each request retried until acknowledged, as the senders do) while
            a worker process (HTTP or the cron worker running a job) is killed
            with SIGKILL at random points and replaced by Odoo's master: every
            acknowledged item applied exactly once (one timesheet per time
            item, one payment per invoice), and the acknowledged requests per
            second back to 90% of the rate before the first kill within 60 s
            of each kill (measured and printed).
pgterm      ``pg_terminate_backend`` on the connections of the worker running
            a job (a Salesforce opportunity whose REST read is slowed down by
            the stand-in): the job is retried and the opportunity becomes
            exactly one order.
redelivery  one engagement's messages (Salesforce, PSA with versions and a
            withdrawal, Stripe) delivered once in order, and the same messages
            of a twin engagement delivered three times each, shuffled, by
            concurrent clients: both final states are identical.
outage      the Salesforce stand-in answers 503 for a while: the opportunity
            waits (retried with backoff) and becomes its order after the
            recovery, while PSA pushes sent during the outage are applied.
taxoutage   an AvaTax stand-in answers 503 for a while: invoices confirmed on
            it wait in draft (taxes pending, policy hold) and are posted and
            committed once when it recovers, while rate-table invoices post.
            (AvaTax's address is fixed per environment: the test-only addon
            ``tests/fault/addons/qtc_fault_avatax`` points the sandbox address
            at the stand-in.)
hostile     malformed and hostile requests on every QTC controller (fuzzed
            and huge bodies, wrong content types, SQL and XML injection, XML
            entity bombs, bad and replayed signatures, wrong tokens): every
            answer a 4xx (or the PSA API's documented per-item rejection), no
            5xx, no business record created, while valid messages sent in
            between are applied. Then, on every webhook route: bodies many
            times the route's cap, chunked, form-encoded and declared, each
            answered 413 before the client finished sending (the bytes the
            server took before answering are measured and must stay near the
            cap), the same for an existing and an unknown backend id; and the
            enumeration probes (unknown, inactive, archived and other-provider
            ids, bad signatures, wrong tokens and orgs): one identical answer
            per route.

A summary table (scenario, events sent, applied, duplicates, lost, 5xx) ends
the run; the exit status is non-zero when a scenario failed. A killed cron
worker's job is taken back by the base's recovery (``_qtc_recover_stale``:
stale heartbeat and its advisory lock free): during the load by the product
itself (job workers look every 4 s, the recovery cron every minute; 12 s
heartbeat threshold), and while a scenario drains the queue at its end also by
the suite, every 3 s with the same threshold.
Throughput is printed twice: requests acknowledged (the webhook side) and time
items applied (the job side, which waits for that recovery after a mid-job
kill).
Throughput figures come from a machine shared with other work: read them as
measured, not as a pass/fail limit (``--strict-throughput`` makes them one).
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
sys.path.insert(
    0,
    str(
        Path(__file__).resolve().parents[2] / "addons" / "qtc_connector_base" / "tests"
    ),
)
import demo as demo_mod
import harness
import http_probe
from harness import Rpc, wait_until

# The key of the suite's own database (a database reused with --reuse-db needs
# the key it was created with: QTC_ENCRYPTION_KEY overrides).
KEY = (
    os.environ.get("QTC_ENCRYPTION_KEY")
    or "ZmF1bHQta2V5LWZvci1xdGMtZmF1bHQtc3VpdGUtMDA="
)
MODULES = (
    "qtc_connector_base,qtc_salesforce,qtc_psa_timesheets,qtc_stripe,qtc_tax,"
    "qtc_fault_avatax"
)
# Test-only addons of the suite (never installed with the product).
FAULT_ADDONS = (Path(__file__).resolve().parent / "addons",)


def sf_id(prefix, *parts):
    """An 18-character Salesforce-shaped id: 3-character key prefix, the
    parts (letters and digits), zero padding, checksum-like suffix."""
    body = "".join(parts)[:12]
    return f"{prefix}{body:0<12}AAA"


class Row:
    def __init__(self, scenario):
        self.scenario = scenario
        self.sent = 0
        self.applied = 0
        self.duplicates = 0
        self.lost = 0
        self.errors_5xx = 0
        self.failures = []
        self.notes = []

    @property
    def ok(self):
        return (
            not self.failures
            and not self.duplicates
            and not self.lost
            and not (self.errors_5xx)
        )

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
        return condition


# ------------------------------------------------------------------ database


def sql(db, query, params=None):
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute(query, params)
        return cr.fetchall() if cr.description else None


RECOVER_SCRIPT = """
import sys, time, odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", sys.argv[1], "--addons-path", sys.argv[2],
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry(sys.argv[1])
until = time.time() + float(sys.argv[3])
total = 0
while time.time() < until:
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        total += len(env["qtc.job"]._qtc_recover_stale())
    time.sleep(3)
print(total)
"""


class Recovery:
    """Runs the base's recovery of dead workers' jobs in the background."""

    def __init__(self, db, seconds):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                RECOVER_SCRIPT,
                db,
                harness.odoo_addons_path(FAULT_ADDONS),
                str(seconds),
            ],
            env=harness.odoo_env(KEY),
            cwd="/",
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def result(self):
        out, _err = self.proc.communicate(timeout=900)
        try:
            return int(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return -1


def preset_ca_bundle(directory):
    """A CA bundle as a corporate machine or CI runner presets it: the public
    roots and a CA of its own, without the demo stand-in's CA."""
    import certifi

    directory.mkdir(parents=True, exist_ok=True)
    files = {name: directory / f"corporate-{name}.pem" for name in ("cert", "ca")}
    files["key"] = directory / "corporate-key.pem"
    if not files["ca"].is_file():
        harness.make_certificates(files, ca_name="Example Corp proxy CA")
    bundle = directory / "preset-ca-bundle.pem"
    bundle.write_text(
        harness.combined_ca_bundle(
            Path(certifi.where()).read_text(), files["ca"].read_text()
        )
    )
    return str(bundle)


def run_sh_ca_bundle(preset):
    """The bundle ``docker/run.sh`` (local mode) gives Odoo when the
    environment presets ``REQUESTS_CA_BUNDLE=preset``."""
    proc = subprocess.run(
        ["bash", str(harness.ROOT / "docker" / "run.sh"), "--print-ca-bundle"],
        env={**os.environ, "REQUESTS_CA_BUNDLE": preset},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip().splitlines()[-1]


class Suite:
    def __init__(self, args, server, standin, rpc, demo):
        self.args = args
        self.db = args.db
        self.server = server
        self.start_server = None  # callable(ca_bundle) -> OdooServer
        self.ca_bundle = None  # the bundle docker/run.sh built
        self.preset_bundle = None  # the preset bundle it was built from
        self.standin = standin
        self.rpc = rpc
        self.demo = demo
        self.tag = f"{random.randrange(16**6):06X}"
        self.reached = None

    # ---------------------------------------------------------- senders

    def deliver(self, path, body, headers_for, counter, attempts=60):
        """POST until a 2xx (a sender retries), signing every attempt.

        :returns: (final response or None, list of statuses seen)
        """
        statuses = []
        for _attempt in range(attempts):
            try:
                response = requests.post(
                    f"{self.server.url}{path}",
                    data=body,
                    headers=headers_for(body),
                    timeout=60,
                )
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    counter["5xx"] += 1
                if response.status_code < 300:
                    return response, statuses
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)
                counter["connection errors"] += 1
            time.sleep(0.3)
        return None, statuses

    def psa_path(self):
        return f"/qtc/psa/{self.demo.psa}/work_items"

    def stripe_path(self):
        return f"/qtc/stripe/{self.demo.stripe}/webhook"

    def psa_headers(self, body):
        return harness.qtc_signed(body, demo_mod.PSA_SECRET)

    def stripe_headers(self, body):
        return harness.stripe_signed(body, demo_mod.STRIPE_SECRET)

    def time_item(self, external_id, hours="0.25", version=1, status="approved"):
        return {
            "external_id": external_id,
            "version": version,
            "kind": "time",
            "project_ref": demo_mod.PROJECT_REF,
            "employee_email": demo_mod.CONSULTANT_EMAIL,
            "date": "2026-11-09",
            "hours": hours,
            "description": external_id,
            "status": status,
            "approved_at": "2026-11-10T09:00:00Z",
            "rate": "150.00",
        }

    def create_invoices(self, partner_id, count, label):
        """Posted customer invoices with distinct totals (JSON-RPC, as a user)."""
        invoices = []
        for n in range(count):
            move_id = self.rpc(
                "account.move",
                "create",
                {
                    "move_type": "out_invoice",
                    "partner_id": partner_id,
                    "invoice_line_ids": [
                        (
                            0,
                            0,
                            {
                                "name": f"{label} {n}",
                                "quantity": 1,
                                "price_unit": 100 + n * 1.37 + random.random(),
                                "tax_ids": [(6, 0, [])],
                            },
                        )
                    ],
                },
            )
            self.rpc("account.move", "action_post", [move_id])
            invoices.append(move_id)
        rows = self.rpc(
            "account.move", "read", invoices, ["name", "amount_total", "state"]
        )
        return [row for row in rows if row["state"] == "posted"]

    def payments_by_invoice(self, invoice_ids):
        """{invoice id: (payment_state, number of payments reconciled)}"""
        rows = sql(
            self.db,
            """
            SELECT m.id, m.payment_state,
                   (SELECT count(DISTINCT p.id)
                      FROM account_payment p
                      JOIN account_move pm ON pm.id = p.move_id
                      JOIN account_move_line pl ON pl.move_id = pm.id
                      JOIN account_partial_reconcile r
                        ON r.credit_move_id = pl.id OR r.debit_move_id = pl.id
                      JOIN account_move_line il
                        ON il.id IN (r.credit_move_id, r.debit_move_id)
                     WHERE il.move_id = m.id)
              FROM account_move m WHERE m.id = ANY(%s)
            """,
            (list(invoice_ids),),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def payments_for_intent(self, intent_id):
        """Payments recorded for one PaymentIntent, reconciled or not (the
        connector names the intent in the payment's memo)."""
        return sql(
            self.db,
            "SELECT count(*) FROM account_payment WHERE memo LIKE %s",
            (f"%{intent_id}%",),
        )[0][0]

    def timesheets_named(self, names):
        rows = sql(
            self.db,
            "SELECT name, count(*), sum(unit_amount) FROM account_analytic_line "
            "WHERE name = ANY(%s) GROUP BY name",
            (list(names),),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def settle(self, timeout):
        """Wait until no QTC job is pending (due) or started, taking back the
        jobs of killed workers on the way."""
        recovery = Recovery(self.db, timeout)
        try:
            wait_until(
                lambda: (
                    not sql(
                        self.db,
                        "SELECT count(*) FROM qtc_job WHERE state IN ('pending', "
                        "'started') AND backend_id IS NOT NULL",
                    )[0][0]
                ),
                timeout,
                2.0,
                "the job queue to drain",
            )
        finally:
            recovery.proc.terminate()
        recovery.proc.wait()

    def partner_id(self):
        return self.rpc("sale.order", "read", [self.reached["order"]], ["partner_id"])[
            0
        ]["partner_id"][0]

    # --------------------------------------------------------- newcomer

    def restart_server(self, ca_bundle):
        self.server.stop()
        self.server = self.start_server(ca_bundle)

    def scenario_newcomer(self):
        row = Row("newcomer: untrusted stand-in")
        number = f"{random.randrange(10**6):06d}"
        opportunity = sf_id("006", "N", self.tag, number)
        notification = sf_id("04l", "N", self.tag, number)
        record = harness.opportunity_record(
            opportunity,
            sf_id("001", "N", self.tag, number),
            f"Newcomer deal {self.tag}",
            f"Newcomer customer {self.tag}",
            [
                (
                    sf_id("00k", "N", self.tag, number),
                    demo_mod.GOLIVE_CODE,
                    1,
                    700,
                    "Fixed",
                )
            ],
            "2026-11-13T10:00:00",
        )
        lines = []
        demo = demo_mod.Demo(
            self.rpc, self.standin, timeout=self.args.settle_timeout, out=lines.append
        )
        # The bug: Odoo keeps a preset bundle that lacks the stand-in's CA.
        self.restart_server(self.preset_bundle)
        started = time.monotonic()
        try:
            demo.send_opportunity(notification, record)
            row.sent = 1
            demo.settle(demo.sf, [notification])
            row.check(False, "applied although Odoo cannot trust the stand-in")
        except harness.JobFailure as exc:
            first = str(exc).splitlines()[0]
            row.check(
                first.startswith("SSL certificate failure"),
                f"stopped on another cause: {first}",
            )
            row.notes.append(
                f"the driver stopped after {time.monotonic() - started:.0f} s "
                f"(timeout {self.args.settle_timeout:.0f} s): {first[:160]}"
            )
        except (demo_mod.DemoError, TimeoutError) as exc:
            row.check(False, f"no early stop on the certificate failure: {exc}")
        finally:
            self.restart_server(self.ca_bundle)
        row.notes.extend(lines[:3])
        # With the bundle docker/run.sh builds, the same work goes through.
        jobs = self.rpc(
            "qtc.job",
            "search",
            [("event_id.external_id", "=", notification), ("state", "=", "pending")],
        )
        if jobs:
            # Run it now, its failed attempt forgotten (a pending job keeps
            # its error until it runs again).
            self.rpc("qtc.job", "action_cancel", jobs)
            self.rpc("qtc.job", "action_requeue", jobs)
        try:
            demo.settle(demo.sf, [notification])
        except (demo_mod.DemoError, TimeoutError, harness.JobFailure) as exc:
            row.check(False, f"not applied with the run.sh bundle: {exc}")
        applied = bool(demo.order_of(opportunity))
        row.applied = int(applied)
        row.lost = 0 if applied else 1
        return row

    # ---------------------------------------------------------- kill -9

    def scenario_kill9(self):
        row = Row("kill -9 workers under load")
        args = self.args
        counter = Counter()
        partner = self.partner_id()
        invoices = self.create_invoices(partner, args.payments, f"F{self.tag} kill9")
        stripe_queue = list(invoices)
        ledger_items = []
        ledger_payments = []
        acks = []  # monotonic times of acknowledged requests
        lock = threading.Lock()
        stop = threading.Event()
        sequence = iter(range(10**9))
        started = time.monotonic()
        duration = args.warmup + args.kills * args.kill_interval + args.tail

        def psa_client():
            while not stop.is_set():
                with lock:
                    numbers = [next(sequence) for _ in range(args.batch)]
                items = [self.time_item(f"F{self.tag}-K-{n:06d}") for n in numbers]
                body = json.dumps({"items": items}).encode()
                response, _statuses = self.deliver(
                    self.psa_path(), body, self.psa_headers, counter
                )
                with lock:
                    if response is not None:
                        acks.append(time.monotonic())
                        ledger_items.extend(item["external_id"] for item in items)
                    else:
                        counter["never acknowledged"] += len(items)
                # A steady offered load the job workers keep up with: the
                # acknowledged rate then shows what a kill takes away.
                stop.wait(random.uniform(0.5, 1.5) / args.rate)

        def stripe_client():
            pace = duration / max(1, len(stripe_queue))
            while not stop.is_set():
                with lock:
                    invoice = stripe_queue.pop(0) if stripe_queue else None
                if invoice is None:
                    return
                event = demo_mod.stripe_event(invoice)
                event["id"] = f"evt_f{self.tag}_{invoice['id']}"
                event["data"]["object"]["id"] = f"pi_f{self.tag}_{invoice['id']}"
                body = json.dumps(event).encode()
                response, _statuses = self.deliver(
                    self.stripe_path(), body, self.stripe_headers, counter
                )
                with lock:
                    if response is not None:
                        acks.append(time.monotonic())
                        ledger_payments.append(invoice)
                    else:
                        counter["never acknowledged"] += 1
                time.sleep(pace)

        threads = [threading.Thread(target=psa_client) for _ in range(args.clients)]
        threads.append(threading.Thread(target=stripe_client))
        for thread in threads:
            thread.start()
        kills = []
        try:
            time.sleep(args.warmup)
            for number in range(args.kills):
                kills.append(self.kill_one(number))
                time.sleep(random.uniform(0.6, 1.4) * args.kill_interval)
            time.sleep(args.tail)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=300)
        load_end = time.monotonic()
        self.settle(args.settle_timeout)

        # Ledger against the database.
        found = self.timesheets_named(ledger_items)
        item_dups = sum(count - 1 for count, _h in found.values() if count > 1)
        item_lost = sum(1 for name in ledger_items if name not in found)
        pay = self.payments_by_invoice([inv["id"] for inv in ledger_payments])
        pay_dups = 0
        pay_lost = 0
        for invoice in ledger_payments:
            state, count = pay.get(invoice["id"], (None, 0))
            recorded = self.payments_for_intent(f"pi_f{self.tag}_{invoice['id']}")
            pay_dups += max(0, count - 1) + max(0, recorded - 1)
            pay_lost += not recorded or not count or state not in ("paid", "in_payment")
        row.sent = len(ledger_items) + len(ledger_payments)
        row.applied = len(found) + sum(
            1 for inv in ledger_payments if pay.get(inv["id"], (None, 0))[1]
        )
        row.duplicates = item_dups + pay_dups
        row.lost = item_lost + pay_lost + counter["never acknowledged"]
        row.errors_5xx = counter["5xx"]
        row.check(
            len(kills) >= args.kills and all(k["killed"] for k in kills),
            f"only {sum(k['killed'] for k in kills)} of {args.kills} kills landed",
        )
        kinds = Counter(k["kind"] for k in kills if k["killed"])
        row.notes.append(
            f"{len(ledger_items)} time items + {len(ledger_payments)} payments "
            f"acknowledged; {sum(kinds.values())} kills ({dict(kinds)}); "
            f"connection errors retried: {counter['connection errors']}"
        )
        self.report_throughput(
            row, acks, kills, started, load_end, "acknowledged requests"
        )
        # Applied: when each time item's timesheet was written (the database
        # clock, UTC), on the same monotonic scale as the kills.
        offset = time.time() - time.monotonic()
        applied = sql(
            self.db,
            "SELECT extract(epoch FROM create_date AT TIME ZONE 'UTC') "
            "FROM account_analytic_line WHERE name = ANY(%s)",
            (ledger_items,),
        )
        self.report_throughput(
            row,
            sorted(float(t) - offset for (t,) in applied),
            kills,
            started,
            load_end,
            "time items applied",
        )
        return row

    def kill_one(self, number):
        """Kill a worker: on odd kills the cron worker running a job when one
        does, else any worker process of the master."""
        children = self.server.children()
        busy = []
        # Odd kills aim at a job in progress: wait a little for one.
        deadline = time.monotonic() + (4.0 if number % 2 else 0.0)
        while True:
            running = sql(
                self.db,
                "SELECT worker FROM qtc_job WHERE state = 'started' "
                "AND worker IS NOT NULL",
            )
            for (worker,) in running:
                try:
                    pid = int(worker.split(":")[1])
                except (IndexError, ValueError):
                    continue
                if pid in children:
                    busy.append(pid)
            if busy or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if number % 2 and busy:
            pid, kind = random.choice(busy), "cron worker mid-job"
        else:
            pid = random.choice(children) if children else None
            kind = "cron worker" if pid in busy else "worker"
        at = time.monotonic()
        killed = bool(pid) and self.server.kill_worker(pid)
        return {"at": at, "pid": pid, "kind": kind, "killed": killed}

    def report_throughput(self, row, acks, kills, started, load_end, what):
        """Events per second before the first kill, and how long after each
        kill a 5 s window is back to 90% of it (all times monotonic)."""
        if not kills or not acks:
            row.failures.append(f"no {what} throughput to measure")
            return
        first_kill = kills[0]["at"]
        warm = [t for t in acks if started + 2 <= t < first_kill]
        baseline = len(warm) / max(0.001, first_kill - started - 2)
        window = 5.0
        end = max(load_end, acks[-1])  # applying may go on after the load
        recoveries = []
        for kill in kills:
            t = kill["at"]
            recovered = None
            while t + window <= end:
                rate = sum(1 for a in acks if t <= a < t + window) / window
                if rate >= 0.9 * baseline:
                    recovered = t - kill["at"]
                    break
                t += 0.5
            recoveries.append(recovered)
        measured = [r for r in recoveries if r is not None]
        late = [r for r in recoveries if r is None or r > 60]
        text = (
            f"{what}: {baseline:.1f}/s before the first kill; back to 90% "
            "(5 s window) after each kill in: "
            + ", ".join("n/a" if r is None else f"{r:.1f}s" for r in recoveries)
        )
        if measured:
            text += (
                f" (median {statistics.median(measured):.1f} s, "
                f"max {max(measured):.1f} s)"
            )
        row.notes.append(text)
        if late:
            message = (
                f"{what}: {len(late)} kill(s) without 90% within 60 s "
                "(or before the load ended)"
            )
            if self.args.strict_throughput:
                row.failures.append(message)
            else:
                row.notes.append(message + " [reported, not enforced]")

    # ----------------------------------------------------- pg_terminate

    def scenario_pgterm(self):
        row = Row("pg_terminate_backend under a job")
        number = f"{random.randrange(10**6):06d}"
        opportunity = sf_id("006", "F", self.tag, number)
        account = sf_id("001", "F", self.tag, number)
        notification = sf_id("04l", "F", self.tag, number)
        record = harness.opportunity_record(
            opportunity,
            account,
            f"Terminated deal {self.tag}",
            f"Terminated customer {self.tag}",
            [
                (
                    sf_id("00k", "F", self.tag, number),
                    demo_mod.GOLIVE_CODE,
                    1,
                    900,
                    "Fixed",
                )
            ],
            "2026-11-12T10:00:00",
        )
        self.standin.delay[opportunity] = 8.0
        self.demo.send_opportunity(notification, record)
        row.sent = 1
        job = wait_until(
            lambda: sql(
                self.db,
                "SELECT j.id, j.worker, j.started_at FROM qtc_job j JOIN qtc_event e "
                "ON e.id = j.event_id WHERE e.external_id = %s AND j.state = 'started'",
                (notification,),
            ),
            90,
            0.2,
            "the opportunity's job to start",
        )[0]
        worker_pid = int(job[1].split(":")[1])
        time.sleep(1.5)  # inside the slowed REST read, transaction open
        # The job's connections: the one holding its advisory lock (the
        # liveness lock) and its own transaction, open since the job started
        # and idle while it waits for Salesforce. Workers share the master's
        # connection name, so they are found by what they hold.
        targets = sql(
            self.db,
            """
            SELECT a.pid, a.state, left(a.query, 60)
              FROM pg_stat_activity a
             WHERE a.datname = %(db)s AND a.pid <> pg_backend_pid()
               AND (a.pid IN (SELECT l.pid FROM pg_locks l
                               WHERE l.locktype = 'advisory' AND l.granted
                                 AND l.classid = %(ns)s AND l.objid = %(job)s)
                    OR (a.state = 'idle in transaction'
                        AND a.xact_start >= %(started)s::timestamp AT TIME ZONE 'UTC'))
            """,
            {"db": self.db, "ns": 824201, "job": job[0], "started": job[2]},
        )
        terminated = sql(
            self.db,
            "SELECT pid, pg_terminate_backend(pid) FROM unnest(%s::int[]) pid",
            ([t[0] for t in targets],),
        )
        row.check(terminated, "no backend of the worker to terminate")
        self.standin.delay.pop(opportunity, None)
        self.settle(self.args.settle_timeout)
        orders = sql(
            self.db,
            "SELECT count(*) FROM qtc_binding WHERE backend_id = %s "
            "AND external_type = 'Opportunity' AND external_id = %s",
            (self.demo.sf, opportunity),
        )[0][0]
        named = sql(
            self.db,
            "SELECT count(*) FROM sale_order so JOIN res_partner p ON p.id = "
            "so.partner_id WHERE p.name = %s",
            (f"Terminated customer {self.tag}",),
        )[0][0]
        attempts = sql(
            self.db,
            "SELECT j.state, j.attempts FROM qtc_job j WHERE j.id = %s",
            (job[0],),
        )[0]
        row.applied = min(orders, 1)
        row.duplicates = max(0, named - 1)
        row.lost = 0 if orders else 1
        row.check(attempts[0] == "done", f"the job ended {attempts[0]}")
        row.check(attempts[1] >= 2, f"the job ran {attempts[1]} time(s), not retried")
        row.notes.append(
            f"terminated {len(terminated)} connection(s) of the job's worker "
            f"(process {worker_pid}: {[t[1:] for t in targets]}); job "
            f"{job[0]} {attempts[0]} after {attempts[1]} attempts; orders for the "
            f"opportunity: {named}"
        )
        return row

    # ------------------------------------------------------- redelivery

    def engagement(self, scope):
        """A second Salesforce engagement (its own customer, order and
        project) for ``scope``; returns (partner id, project ref)."""
        number = f"{random.randrange(10**6):06d}"
        opportunity = sf_id("006", "R", scope, self.tag, number)
        record = harness.opportunity_record(
            opportunity,
            sf_id("001", "R", scope, self.tag, number),
            f"Redelivery deal {scope} {self.tag}",
            f"Redelivery customer {scope} {self.tag}",
            [
                (
                    sf_id("00k", "R", scope, self.tag, number),
                    demo_mod.CONSULT_CODE,
                    50,
                    150,
                    "Time",
                ),
            ],
            "2026-11-13T10:00:00",
        )
        return opportunity, record

    def scenario_redelivery(self):
        row = Row("every webhook x3, shuffled")
        counter = Counter()
        scopes = {}
        for scope in ("A", "B"):
            opportunity, record = self.engagement(scope)
            scopes[scope] = {"opportunity": opportunity, "record": record}
        # The Salesforce messages: A once, B three times (concurrently).
        notification_a = sf_id("04l", "RA", self.tag)
        notification_b = sf_id("04l", "RB", self.tag)
        self.demo.send_opportunity(notification_a, scopes["A"]["record"])
        self.demo.standin.add(scopes["B"]["record"])
        sf_body = harness.outbound_message(
            self.demo.org_id,
            [(notification_b, scopes["B"]["record"])],
            self.standin.instance_url,
        )
        sf_path = (
            f"/qtc/salesforce/{self.demo.sf}/outbound/{demo_mod.SF_OUTBOUND_TOKEN}"
        )
        self.parallel(
            [
                (sf_path, sf_body, lambda _b: {"Content-Type": "text/xml"})
                for _ in range(3)
            ],
            counter,
        )
        self.demo.settle(self.demo.sf, [notification_a, notification_b])
        for scope in scopes.values():
            order_id = self.demo.order_of(scope["opportunity"])
            reached = demo_mod.reached_of(self.demo, order_id)
            scope["order"] = order_id
            scope["project"] = reached["project"]
            scope["partner"] = self.rpc(
                "sale.order", "read", [order_id], ["partner_id"]
            )[0]["partner_id"][0]
        # PSA deliveries: versions, a change of hours, a withdrawal.
        deliveries = {}
        for scope in scopes:
            ref = f"F{self.tag}-RD-{scope}"
            self.demo.map_value(
                "qtc_psa_timesheets.qtc_value_map_psa_project",
                ref,
                scopes[scope]["project"],
            )
            items = []
            for n in range(self.args.redelivery_items):
                base = self.time_item(f"F{self.tag}-RD{scope}-{n:03d}")
                base["project_ref"] = ref
                items.append(base)
                if n % 3 == 1:
                    items.append({**base, "version": 2, "hours": "1.50"})
                if n % 3 == 2:
                    items.append({**base, "version": 2, "status": "withdrawn"})
            deliveries[scope] = items
        invoices = {
            scope: self.create_invoices(
                scopes[scope]["partner"], self.args.redelivery_payments, f"RD{scope}"
            )
            for scope in scopes
        }
        stripe_events = {}
        for scope, scope_invoices in invoices.items():
            events = []
            for invoice in scope_invoices:
                event = demo_mod.stripe_event(invoice)
                event["id"] = f"evt_rd{self.tag}_{invoice['id']}"
                event["data"]["object"]["id"] = f"pi_rd{self.tag}_{invoice['id']}"
                events.append(json.dumps(event).encode())
            stripe_events[scope] = events
        # A: once, in order.
        for item in deliveries["A"]:
            body = json.dumps({"items": [item]}).encode()
            self.deliver(self.psa_path(), body, self.psa_headers, counter)
        for body in stripe_events["A"]:
            self.deliver(self.stripe_path(), body, self.stripe_headers, counter)
        # B: three times each, shuffled, concurrent.
        requests_b = [
            (self.psa_path(), json.dumps({"items": [item]}).encode(), self.psa_headers)
            for item in deliveries["B"]
        ] + [
            (self.stripe_path(), body, self.stripe_headers)
            for body in stripe_events["B"]
        ]
        requests_b = requests_b * 3
        random.shuffle(requests_b)
        self.parallel(requests_b, counter)
        self.settle(self.args.settle_timeout)

        state = {
            scope: self.scope_state(scope, scopes[scope], invoices[scope])
            for scope in scopes
        }
        row.sent = len(deliveries["B"]) * 3 + len(stripe_events["B"]) * 3 + 3
        row.check(
            state["A"] == state["B"],
            "final states differ: "
            + json.dumps({"A": state["A"], "B": state["B"]}, default=str)[:600],
        )
        expected_lines = sum(1 for item in deliveries["B"] if item["version"] == 1) - (
            sum(1 for item in deliveries["B"] if item.get("status") == "withdrawn")
        )
        live = sum(1 for t in state["B"]["timesheets"] if t[1] > 0)
        extra = sum(max(0, t[1] - 1) for t in state["B"]["timesheets"])
        paid_twice = sum(max(0, p[1] - 1) for p in state["B"]["payments"])
        row.applied = live + sum(1 for p in state["B"]["payments"] if p[1])
        row.duplicates = extra + paid_twice + max(0, state["B"]["orders"] - 1)
        row.lost = max(0, expected_lines - live) + sum(
            1 for p in state["B"]["payments"] if not p[1]
        )
        row.errors_5xx = counter["5xx"]
        row.notes.append(
            f"B: {len(deliveries['B'])} PSA deliveries (versions 1-2, withdrawals) "
            f"+ {len(stripe_events['B'])} payments + 1 opportunity, each sent 3 times "
            "shuffled; A the same once in order; states equal: "
            f"{state['A'] == state['B']}"
        )
        return row

    def parallel(self, items, counter, threads=4):
        queue = list(items)
        lock = threading.Lock()

        def client():
            while True:
                with lock:
                    if not queue:
                        return
                    path, body, headers_for = queue.pop()
                self.deliver(path, body, headers_for, counter)

        workers = [threading.Thread(target=client) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def scope_state(self, scope, info, invoices):
        """The final state of one engagement, without its names."""
        prefix = f"F{self.tag}-RD{scope}-"
        rows = sql(
            self.db,
            "SELECT name, count(*), sum(unit_amount) FROM account_analytic_line "
            "WHERE name LIKE %s GROUP BY name ORDER BY name",
            (prefix + "%",),
        )
        timesheets = [
            (name[len(prefix) :], count, float(hours)) for name, count, hours in rows
        ]
        order_lines = sql(
            self.db,
            "SELECT product_uom_qty, qty_delivered, qty_invoiced FROM sale_order_line "
            "WHERE order_id = %s ORDER BY id",
            (info["order"],),
        )
        pay = self.payments_by_invoice([inv["id"] for inv in invoices])
        payments = [pay[inv["id"]] for inv in invoices]
        orders = sql(
            self.db,
            "SELECT count(*) FROM qtc_binding WHERE backend_id = %s AND "
            "external_type = 'Opportunity' AND external_id = %s",
            (self.demo.sf, info["opportunity"]),
        )[0][0]
        return {
            "timesheets": timesheets,
            "order lines": [tuple(float(x) for x in line) for line in order_lines],
            "payments": payments,
            "orders": orders,
        }

    # ----------------------------------------------------------- outage

    def scenario_outage(self):
        row = Row("Salesforce 503 for a while")
        counter = Counter()
        number = f"{random.randrange(10**6):06d}"
        opportunity = sf_id("006", "O", self.tag, number)
        notification = sf_id("04l", "O", self.tag, number)
        record = harness.opportunity_record(
            opportunity,
            sf_id("001", "O", self.tag, number),
            f"Outage deal {self.tag}",
            f"Outage customer {self.tag}",
            [
                (
                    sf_id("00k", "O", self.tag, number),
                    demo_mod.GOLIVE_CODE,
                    1,
                    700,
                    "Fixed",
                )
            ],
            "2026-11-14T10:00:00",
        )
        outage = self.args.outage
        self.standin.fail_for(outage)
        began = time.monotonic()
        self.demo.send_opportunity(notification, record)
        # Meanwhile PSA work goes on and must not wait for Salesforce.
        names = []
        for n in range(5):
            item = self.time_item(f"F{self.tag}-OUT-{n:03d}")
            names.append(item["external_id"])
            body = json.dumps({"items": [item]}).encode()
            self.deliver(self.psa_path(), body, self.psa_headers, counter)
        psa_at = order_at = None
        deadline = began + outage + max(240, self.args.settle_timeout)
        while time.monotonic() < deadline and (psa_at is None or order_at is None):
            now = time.monotonic() - began
            if psa_at is None and len(self.timesheets_named(names)) == len(names):
                psa_at = now
            if order_at is None and self.demo.order_of(opportunity):
                order_at = now
            time.sleep(0.5)
        self.settle(self.args.settle_timeout)
        attempts = sql(
            self.db,
            "SELECT max(j.attempts) FROM qtc_job j JOIN qtc_event e ON "
            "e.id = j.event_id WHERE e.backend_id = %s AND e.external_id = %s",
            (self.demo.sf, notification),
        )[0][0]
        calls_503 = self.standin.calls.get("503", 0)
        found = self.timesheets_named(names)
        row.sent = 1 + len(names)
        row.applied = (1 if order_at is not None else 0) + len(found)
        row.lost = (0 if order_at is not None else 1) + len(names) - len(found)
        row.duplicates = sum(c - 1 for c, _h in found.values() if c > 1)
        row.errors_5xx = counter["5xx"]
        row.check(
            psa_at is not None and psa_at < outage,
            "PSA pushes were not applied while Salesforce was down",
        )
        row.check(
            order_at is None or order_at >= outage,
            "the order appeared while Salesforce was still down",
        )
        row.check(calls_503 > 0, "the stand-in was never called during the outage")
        row.notes.append(
            f"stand-in answered 503 to {calls_503} call(s) for {outage:.0f} s; PSA "
            f"items applied {psa_at if psa_at is None else round(psa_at, 1)} s into "
            f"the outage; the opportunity's order appeared "
            f"{order_at if order_at is None else round(order_at, 1)} s after it "
            f"began, on attempt {attempts}"
        )
        return row

    # ------------------------------------------------------- tax outage

    def scenario_taxoutage(self):
        row = Row("tax engine 503 for a while")
        avatax = self.avatax
        partner = self.partner_id()
        backend = self.rpc.search_read(
            "qtc.backend", [("name", "=", "AvaTax stand-in (fault suite)")], ["id"]
        )
        if backend:
            backend_id = backend[0]["id"]
        else:
            backend_id = self.rpc(
                "qtc.backend",
                "create",
                {
                    "name": "AvaTax stand-in (fault suite)",
                    "provider": "avatax",
                    "environment": "sandbox",
                    "state": "active",
                    "sequence": 1000,  # the rate table stays the default engine
                    "avatax_account_id": "1100000000",
                    "avatax_license_key": "fault-suite-license",
                    "avatax_company_code": "DEFAULT",
                    "tax_outage_policy": "hold",
                },
            )
        outage = self.args.outage
        avatax.fail_for(outage)
        began = time.monotonic()
        held = []
        for n in range(self.args.tax_invoices):
            move_id = self.rpc(
                "account.move",
                "create",
                {
                    "move_type": "out_invoice",
                    "partner_id": partner,
                    "tax_backend_id": backend_id,
                    "invoice_line_ids": [
                        (
                            0,
                            0,
                            {
                                "name": f"F{self.tag} taxed {n}",
                                "quantity": 1,
                                "price_unit": 200 + n,
                                "tax_ids": [(6, 0, [])],
                            },
                        )
                    ],
                },
            )
            self.rpc("account.move", "action_post", [move_id])
            held.append(move_id)
        during = self.rpc("account.move", "read", held, ["state", "tax_state"])
        # Other billing goes on meanwhile: invoices on the rate table post.
        others = self.create_invoices(partner, 2, f"F{self.tag} untouched")
        others_at = time.monotonic() - began

        def all_posted():
            rows = self.rpc(
                "account.move", "read", held, ["state", "tax_state", "name"]
            )
            return rows if all(r["state"] == "posted" for r in rows) else None

        try:
            final = wait_until(
                all_posted, outage + 400, 2.0, "the held invoices to be posted"
            )
        except TimeoutError:
            final = self.rpc(
                "account.move", "read", held, ["state", "tax_state", "name"]
            )
        posted_at = time.monotonic() - began
        self.settle(self.args.settle_timeout)
        final = self.rpc("account.move", "read", held, ["state", "tax_state", "name"])
        commits = {
            name: avatax.commits.get(name, 0) for name in (r["name"] for r in final)
        }
        row.sent = len(held)
        row.applied = sum(
            1 for r in final if r["state"] == "posted" and r["tax_state"] == "committed"
        )
        row.lost = len(held) - row.applied
        row.duplicates = sum(max(0, c - 1) for c in commits.values())
        row.check(
            all(r["state"] == "draft" and r["tax_state"] == "pending" for r in during),
            f"during the outage the invoices were {during}",
        )
        row.check(
            len(others) == 2 and others_at < outage,
            f"other invoices posted {len(others)} of 2 at {others_at:.0f} s "
            f"(outage {outage:.0f} s)",
        )
        row.check(
            all(c == 1 for c in commits.values()),
            f"engine commits per invoice: {commits}",
        )
        row.notes.append(
            f"AvaTax stand-in answered 503 to {avatax.calls.get('503', 0)} call(s) "
            f"for {outage:.0f} s: {len(held)} invoices held in draft (taxes pending), "
            f"2 rate-table invoices posted meanwhile ({others_at:.0f} s); the held "
            f"ones were posted {posted_at:.0f} s after the outage began (the "
            "engine's first retry waits 60 s); engine commits per invoice: "
            f"{sorted(commits.values())}"
        )
        return row

    # ---------------------------------------------------------- hostile

    def scenario_hostile(self):
        row = Row("malformed and hostile inputs")
        before = self.business_counts()
        events_before = sql(self.db, "SELECT max(id) FROM qtc_event")[0][0] or 0
        rng = random.Random(7)
        psa, stripe, sf = self.demo.psa, self.demo.stripe, self.demo.sf
        token = demo_mod.SF_OUTBOUND_TOKEN
        sf_path = f"/qtc/salesforce/{sf}/outbound/{token}"
        injections = [
            "' OR '1'='1",
            "1; DROP TABLE qtc_event; --",
            '" ) UNION SELECT password FROM res_users --',
            "<script>alert(1)</script>",
            "../../etc/passwd",
            "%00\x00",
            "${jndi:ldap://127.0.0.1/x}",
        ]
        # "Billion laughs": nine levels of ten references each.
        entities = ['<!ENTITY lol0 "lol">'] + [
            f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
        ]
        bomb = (
            f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(entities)}]>'
            "<lolz>&lol9;</lolz>"
        ).encode()
        xxe = (
            b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM '
            b'"file:///etc/passwd">]><soapenv:Envelope xmlns:soapenv='
            b'"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            b"<notifications>&xxe;</notifications></soapenv:Body></soapenv:Envelope>"
        )
        huge = b'{"items": [' + b'{"x": "' + b"A" * (3 * 1024 * 1024) + b'"}]}'
        valid_item = self.time_item(f"F{self.tag}-H-VALID-0")
        cases = []

        def add(
            name,
            method,
            path,
            body,
            headers,
            allowed=(400, 401, 403, 404, 405, 413, 415),
        ):
            cases.append((name, method, path, body, headers, allowed))

        psa_path = f"/qtc/psa/{psa}/work_items"
        stripe_path = f"/qtc/stripe/{stripe}/webhook"
        generic_path = f"/qtc/webhook/{psa}"
        for path, signer in (
            (psa_path, self.psa_headers),
            (stripe_path, self.stripe_headers),
            (generic_path, self.psa_headers),
        ):
            for _n in range(self.args.fuzz):
                blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
                add(f"random bytes signed {path}", "POST", path, blob, signer(blob))
                add(f"random bytes unsigned {path}", "POST", path, blob, {})
                mutated = bytearray(json.dumps({"items": [valid_item]}).encode())
                for _ in range(3):
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                # One byte no JSON text may hold, so the body is never valid.
                mutated[rng.randrange(len(mutated))] = rng.choice((0x00, 0x01, 0xFF))
                mutated = bytes(mutated)
                add(
                    f"mutated JSON signed {path}",
                    "POST",
                    path,
                    mutated,
                    signer(mutated),
                    (200, 400, 401, 413),
                )
            good = json.dumps({"items": [valid_item]}).encode()
            add(
                f"bad signature {path}",
                "POST",
                path,
                good,
                {
                    "Content-Type": "application/json",
                    harness.qtc_signature.HEADER: "t=1,v1=" + "0" * 64,
                    harness.stripe_signature.HEADER: "t=1,v1=" + "0" * 64,
                },
            )
            stale = int(time.time()) - 3600
            add(
                f"expired signature {path}",
                "POST",
                path,
                good,
                {
                    "Content-Type": "application/json",
                    harness.qtc_signature.HEADER: harness.qtc_signature.sign(
                        good, demo_mod.PSA_SECRET, timestamp=stale
                    ),
                    harness.stripe_signature.HEADER: harness.stripe_signature.sign(
                        good, demo_mod.STRIPE_SECRET, timestamp=stale
                    ),
                },
            )
            add(
                f"signed with another secret {path}",
                "POST",
                path,
                good,
                harness.qtc_signed(good, "not-the-secret")
                | harness.stripe_signed(good, "whsec_other"),
            )
            add(f"huge body {path}", "POST", path, huge, signer(huge))
            add(
                f"wrong content type {path}",
                "POST",
                path,
                good,
                {**signer(good), "Content-Type": "application/x-www-form-urlencoded"},
                (200, 400, 401, 413, 415),
            )
            add(f"XML to a JSON endpoint {path}", "POST", path, xxe, signer(xxe))
            add(f"GET {path}", "GET", path, b"", {}, (404, 405))
            for text in injections:
                payload = json.dumps(
                    {
                        "items": [
                            {
                                **valid_item,
                                "external_id": text,
                                "project_ref": text,
                                "hours": text,
                            }
                        ]
                    }
                ).encode()
                add(
                    f"injection signed {path}",
                    "POST",
                    path,
                    payload,
                    signer(payload),
                    (200, 400, 401),
                )
        # Hostile backend ids in the URL: the routes take integers only.
        for template in (
            "/qtc/psa/{}/work_items",
            "/qtc/stripe/{}/webhook",
            "/qtc/webhook/{}",
            "/qtc/salesforce/{}/outbound/" + token,
        ):
            for text in injections:
                if "\x00" in text:
                    continue  # see the NUL probe below
                quoted = requests.utils.quote(text, safe="")
                add(
                    f"injection in path {template}",
                    "POST",
                    template.format(quoted),
                    b"{}",
                    self.psa_headers(b"{}"),
                    (400, 401, 404, 405),
                )
        for _n in range(self.args.fuzz):
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
            add(
                "random bytes to Salesforce",
                "POST",
                sf_path,
                blob,
                {"Content-Type": "text/xml"},
            )
        add(
            "XML bomb to Salesforce",
            "POST",
            sf_path,
            bomb,
            {"Content-Type": "text/xml"},
        )
        add("XXE to Salesforce", "POST", sf_path, xxe, {"Content-Type": "text/xml"})
        add(
            "huge body to Salesforce",
            "POST",
            sf_path,
            b"<a>" + b"A" * (3 * 1024 * 1024) + b"</a>",
            {"Content-Type": "text/xml"},
        )
        wrong_org = harness.outbound_message(
            "00D999999999999AAA",
            [("04l999999999999AAA", demo_mod.engagement_record())],
            self.standin.instance_url,
        )
        add(
            "another org's message",
            "POST",
            sf_path,
            wrong_org,
            {"Content-Type": "text/xml"},
        )
        for text in injections:
            add(
                "wrong token (injection)",
                "POST",
                f"/qtc/salesforce/{sf}/outbound/{requests.utils.quote(text, safe='')}",
                wrong_org,
                {"Content-Type": "text/xml"},
                (400, 401, 404, 405),
            )
        add(
            "JSON to Salesforce",
            "POST",
            sf_path,
            b'{"a": 1}',
            {"Content-Type": "application/json"},
        )
        for path in ("/qtc/health", "/qtc/metrics"):
            add(f"no token {path}", "GET", path, b"", {}, (401, 403, 404))
            for text in injections:
                add(
                    f"injected token {path}",
                    "GET",
                    path,
                    b"",
                    {"Authorization": f"Bearer {text}"},
                    (400, 401, 403, 404),
                )
        rng.shuffle(cases)
        # A NUL byte in a URL no route matches reaches Odoo's own fallback
        # (attachment lookup by path), not a QTC controller: observed, reported.
        nul_probe = f"/qtc/webhook/{requests.utils.quote(chr(0), safe='')}"

        counter = Counter()
        statuses = Counter()
        bad = []
        valid_names = []
        for index, (name, method, path, body, headers, allowed) in enumerate(cases):
            try:
                response = requests.request(
                    method,
                    f"{self.server.url}{path}",
                    data=body or None,
                    headers=headers,
                    timeout=60,
                )
                status = response.status_code
                answer = response.content[:2000]
            except requests.RequestException as exc:
                status, answer = type(exc).__name__, b""
            statuses[status] += 1
            if isinstance(status, int) and status >= 500:
                counter["5xx"] += 1
            if status not in allowed:
                bad.append(f"{name}: {status} {answer[:120]!r}")
            elif status == 200:
                # The PSA API answers a readable batch item by item: every
                # hostile item must be rejected.
                try:
                    results = json.loads(answer)["items"]
                except (ValueError, KeyError, TypeError):
                    results = None
                if not results or any(r["status"] != "rejected" for r in results):
                    bad.append(f"{name}: 200 accepted {answer[:160]!r}")
            if index % 25 == 0:
                item = self.time_item(f"F{self.tag}-H-VALID-{index:04d}")
                valid_names.append(item["external_id"])
                body_ok = json.dumps({"items": [item]}).encode()
                self.deliver(self.psa_path(), body_ok, self.psa_headers, counter)
        try:
            nul_status = requests.post(
                f"{self.server.url}{nul_probe}", data=b"{}", timeout=60
            ).status_code
        except requests.RequestException as exc:
            nul_status = type(exc).__name__
        row.notes.append(
            f"outside the QTC controllers: POST {nul_probe} (no route) answered "
            f"{nul_status} by Odoo's fallback handler"
        )
        self.settle(self.args.settle_timeout)
        after = self.business_counts()
        found = self.timesheets_named(valid_names)
        processed = sql(
            self.db,
            "SELECT count(*) FROM qtc_event WHERE id > %s AND state IN ('done', "
            "'received') AND NOT (external_id LIKE %s)",
            (events_before, f"F{self.tag}-H-VALID-%"),
        )[0][0]
        row.sent = len(cases) + len(valid_names)
        row.applied = len(found)
        row.lost = len(valid_names) - len(found)
        row.duplicates = sum(c - 1 for c, _h in found.values() if c > 1)
        row.errors_5xx = counter["5xx"]
        expected = dict(before)
        expected["timesheets"] += len(valid_names)
        row.check(
            not bad, f"{len(bad)} answer(s) not a clear refusal: " + "; ".join(bad[:5])
        )
        row.check(after == expected, f"business records changed: {before} -> {after}")
        row.check(not processed, f"{processed} hostile event(s) stored as applicable")
        row.notes.append(
            f"{len(cases)} hostile requests, answers "
            f"{dict(sorted(statuses.items(), key=str))}; "
            f"{len(valid_names)} valid pushes in between applied: {len(found)}"
        )
        edge_sent = self.hostile_oversized(row) + self.hostile_enumeration(row)
        row.sent += edge_sent
        after_edges = self.business_counts()
        row.check(
            after_edges == after,
            f"business records changed by edge probes: {after} -> {after_edges}",
        )
        return row

    # ------------------------------------------------ hostile: edges

    def route_families(self):
        """``(name, provider, path template, signer)`` of every webhook route;
        the path template takes the backend id."""
        token = demo_mod.SF_OUTBOUND_TOKEN
        return (
            ("generic", None, "/qtc/webhook/{}", self.psa_headers),
            ("stripe", "stripe", "/qtc/stripe/{}/webhook", self.stripe_headers),
            ("psa push", "psa_push", "/qtc/psa/{}/work_items", self.psa_headers),
            (
                "psa status",
                "psa_push",
                "/qtc/psa/{}/billing_status",
                self.psa_headers,
            ),
            (
                "salesforce",
                "salesforce",
                "/qtc/salesforce/{}/outbound/" + token,
                lambda body: {"Content-Type": "text/xml"},
            ),
        )

    def unknown_backend_id(self):
        return sql(self.db, "SELECT COALESCE(max(id), 0) + 1000 FROM qtc_backend")[0][0]

    def route_cap(self, provider):
        """The route's cap before authentication, as the base computes it:
        the largest cap of the backends it serves, archived ones included."""
        if provider:
            rows = sql(
                self.db,
                "SELECT max(max_body_bytes) FROM qtc_backend WHERE provider = %s",
                (provider,),
            )
        else:
            rows = sql(self.db, "SELECT max(max_body_bytes) FROM qtc_backend")
        return rows[0][0] or 1024 * 1024

    def hostile_oversized(self, row):
        """Bodies 16 times the cap, chunked, form-encoded and declared, to an
        existing and an unknown id of every route: 413, answered before the
        body was sent, identical for both ids; the bytes taken measured."""
        url = self.server.url.split("//", 1)[1]
        host, port = url.split(":")
        unknown = self.unknown_backend_id()
        real = {
            "generic": self.generic_backend(),
            "stripe": self.demo.stripe,
            "psa push": self.demo.psa,
            "psa status": self.demo.psa,
            "salesforce": self.demo.sf,
        }
        worst = {}
        sent = 0
        slack = 8 * 1024 * 1024  # both kernels' socket buffers, at most
        for name, provider, template, _signer in self.route_families():
            cap = self.route_cap(provider)
            total = cap * 16
            answers = {}
            for label, kwargs in (
                ("chunked", {"chunked": True}),
                (
                    "chunked form",
                    {
                        "chunked": True,
                        "headers": {
                            "Content-Type": "application/x-www-form-urlencoded"
                        },
                    },
                ),
                (
                    "declared form",
                    {"headers": {"Content-Type": "application/x-www-form-urlencoded"}},
                ),
                (
                    "declared multipart",
                    {"headers": {"Content-Type": "multipart/form-data; boundary=x"}},
                ),
            ):
                for which, backend_id in (
                    ("existing", real[name]),
                    ("unknown", unknown),
                ):
                    probe = http_probe.send_body(
                        host, int(port), template.format(backend_id), total, **kwargs
                    )
                    sent += 1
                    key = f"{name} {label} {which}"
                    answers[(label, which)] = (probe.status, probe.body)
                    row.check(
                        probe.status == 413, f"{key}: {probe.status} {probe.error}"
                    )
                    row.check(
                        not probe.finished_sending,
                        f"{key}: the whole {total}-byte body was taken",
                    )
                    row.check(
                        probe.sent <= cap + slack,
                        f"{key}: {probe.sent} bytes taken before the answer "
                        f"(cap {cap})",
                    )
                    worst[label] = max(worst.get(label, 0), probe.sent)
                row.check(
                    answers[(label, "existing")] == answers[(label, "unknown")],
                    f"{name} {label}: existing and unknown ids answered differently",
                )
        row.notes.append(
            "oversized bodies (16x the cap, 413 on every route, same for existing "
            "and unknown ids): most bytes the server took before answering: "
            + ", ".join(f"{label} {size // 1024} KiB" for label, size in worst.items())
        )
        return sent

    def generic_backend(self):
        """An active backend served by the generic route (no provider), with
        the PSA demo secret, made once."""
        if getattr(self, "_generic", None):
            return self._generic
        found = self.rpc(
            "qtc.backend", "search", [("name", "=", "Fault suite generic")]
        )
        self._generic = (
            found[0]
            if found
            else self.rpc(
                "qtc.backend",
                "create",
                {
                    "name": "Fault suite generic",
                    "state": "active",
                    "webhook_secret": demo_mod.PSA_SECRET,
                },
            )
        )
        return self._generic

    def probe_backends(self, provider, secret_field, secret):
        """A disabled and an archived backend of ``provider`` holding the
        demo's own secret: a valid signature must not open them."""
        made = {}
        for label in ("disabled", "archived"):
            values = {
                "name": f"Fault suite {provider or 'generic'} {label}",
                "state": "disabled" if label == "disabled" else "active",
                secret_field: secret,
            }
            if provider:
                values["provider"] = provider
            backend_id = self.rpc("qtc.backend", "create", values)
            if label == "archived":
                self.rpc("qtc.backend", "write", [backend_id], {"active": False})
            made[label] = backend_id
        return made

    def hostile_enumeration(self, row):
        """Per route: every unauthenticated failure (unknown, inactive,
        archived, other-provider id; bad, expired or missing signature; wrong
        token or org) gets one identical answer."""
        unknown = self.unknown_backend_id()
        sent = 0
        stale = int(time.time()) - 3600
        generic = self.generic_backend()
        sf_probe = self.probe_backends(
            "salesforce", "salesforce_outbound_token", demo_mod.SF_OUTBOUND_TOKEN
        )
        probes_by_route = {
            "generic": (
                generic,
                None,
                self.probe_backends(None, "webhook_secret", demo_mod.PSA_SECRET),
                self.demo.psa,
            ),
            "stripe": (
                self.demo.stripe,
                "stripe",
                self.probe_backends("stripe", "webhook_secret", demo_mod.STRIPE_SECRET),
                self.demo.psa,
            ),
            "psa push": (
                self.demo.psa,
                "psa_push",
                self.probe_backends("psa_push", "webhook_secret", demo_mod.PSA_SECRET),
                self.demo.stripe,
            ),
            "salesforce": (self.demo.sf, "salesforce", sf_probe, self.demo.psa),
        }
        probes_by_route["psa status"] = probes_by_route["psa push"]
        item = self.time_item(f"F{self.tag}-ENUM-0")
        for name, _provider, template, signer in self.route_families():
            real, _p, inactive, other = probes_by_route[name]
            if name == "salesforce":
                body = harness.outbound_message(
                    self.demo.org_id,
                    [("04l0000000ENUM0AAA", demo_mod.engagement_record())],
                    self.standin.instance_url,
                )
                headers = {"Content-Type": "text/xml"}
                base = "/qtc/salesforce/{}/outbound/"
                token = demo_mod.SF_OUTBOUND_TOKEN
                wrong_org = harness.outbound_message(
                    "00D999999999999AAA",
                    [("04l0000000ENUM1AAA", demo_mod.engagement_record())],
                    self.standin.instance_url,
                )
                cases = {
                    "wrong token": (base.format(real) + "not-the-token", body, headers),
                    "wrong org": (base.format(real) + token, wrong_org, headers),
                    "unknown id": (base.format(unknown) + token, body, headers),
                    "other provider": (base.format(other) + token, body, headers),
                    "disabled": (
                        base.format(inactive["disabled"]) + token,
                        body,
                        headers,
                    ),
                    "archived": (
                        base.format(inactive["archived"]) + token,
                        body,
                        headers,
                    ),
                }
            else:
                if name == "stripe":
                    body = json.dumps(
                        {"id": f"evt_{self.tag}_enum", "object": "event", "type": "x"}
                    ).encode()
                    bad = harness.stripe_signed(body, "whsec_not_the_secret")
                    expired = {
                        "Content-Type": "application/json",
                        harness.stripe_signature.HEADER: harness.stripe_signature.sign(
                            body, demo_mod.STRIPE_SECRET, timestamp=stale
                        ),
                    }
                else:
                    key = "external_ids" if name == "psa status" else "items"
                    value = ["X"] if name == "psa status" else [item]
                    body = json.dumps({key: value, "id": "e", "type": "x"}).encode()
                    bad = harness.qtc_signed(body, "not-the-secret")
                    expired = {
                        "Content-Type": "application/json",
                        harness.qtc_signature.HEADER: harness.qtc_signature.sign(
                            body, demo_mod.PSA_SECRET, timestamp=stale
                        ),
                    }
                good = signer(body)
                cases = {
                    "bad signature": (template.format(real), body, bad),
                    "expired signature": (template.format(real), body, expired),
                    "missing signature": (
                        template.format(real),
                        body,
                        {"Content-Type": "application/json"},
                    ),
                    "unknown id": (template.format(unknown), body, good),
                    "other provider": (template.format(other), body, good),
                    "disabled": (template.format(inactive["disabled"]), body, good),
                    "archived": (template.format(inactive["archived"]), body, good),
                }
            answers = {}
            for label, (path, data, hdrs) in cases.items():
                response = requests.post(
                    f"{self.server.url}{path}", data=data, headers=hdrs, timeout=60
                )
                sent += 1
                answers[label] = (
                    response.status_code,
                    response.headers.get("Content-Type"),
                    response.content,
                )
            reference = next(iter(answers.values()))
            row.check(
                reference[0] == 401, f"{name}: unauthenticated answer {reference[0]}"
            )
            differing = [label for label, a in answers.items() if a != reference]
            row.check(
                not differing,
                f"{name}: answers differ for {differing}: "
                + "; ".join(
                    f"{k} {answers[k][0]} {answers[k][2][:80]!r}" for k in differing
                ),
            )
        row.notes.append(
            f"enumeration probes: {sent} requests on 5 routes (unknown, disabled, "
            "archived, other-provider ids, bad/expired/missing signatures, wrong "
            "token and org), one identical 401 answer per route"
        )
        return sent

    def business_counts(self):
        counts = {}
        # Table names are constants of this list, never input.
        for label, table in (
            ("partners", "res_partner"),
            ("orders", "sale_order"),
            ("timesheets", "account_analytic_line"),
            ("invoices", "account_move"),
            ("payments", "account_payment"),
            ("projects", "project_project"),
        ):
            counts[label] = sql(self.db, f"SELECT count(*) FROM {table}")[0][0]
        return counts


# --------------------------------------------------------------------- main

SCENARIOS = (
    "newcomer",
    "kill9",
    "pgterm",
    "redelivery",
    "outage",
    "taxoutage",
    "hostile",
)


def print_table(rows):
    header = (
        f"{'scenario':<34} {'sent':>6} {'applied':>8} {'dups':>5} {'lost':>5} "
        f"{'5xx':>4}  result"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.scenario:<34} {row.sent:>6} {row.applied:>8} {row.duplicates:>5} "
            f"{row.lost:>5} {row.errors_5xx:>4}  {'ok' if row.ok else 'FAILED'}"
        )
    for row in rows:
        for note in row.notes:
            print(f"  {row.scenario}: {note}")
        for failure in row.failures:
            print(f"  {row.scenario}: FAILED: {failure}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="qtc_fault")
    parser.add_argument(
        "--port", type=int, default=8189, help="HTTP port (+1 websocket)"
    )
    parser.add_argument("--standin-port", type=int, default=0, help="default: port + 2")
    parser.add_argument(
        "--full", action="store_true", help="the full sizes (20+ kills)"
    )
    parser.add_argument("--kills", type=int)
    parser.add_argument("--kill-interval", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=12.0)
    parser.add_argument("--tail", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument(
        "--rate", type=float, default=0.5, help="PSA pushes per second per client"
    )
    parser.add_argument("--payments", type=int)
    parser.add_argument("--outage", type=float)
    parser.add_argument("--fuzz", type=int)
    parser.add_argument("--redelivery-items", type=int)
    parser.add_argument("--redelivery-payments", type=int)
    parser.add_argument("--tax-invoices", type=int)
    parser.add_argument("--settle-timeout", type=float, default=420)
    parser.add_argument("--only", help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--strict-throughput", action="store_true")
    args = parser.parse_args()
    # Stopped by SIGTERM (a CI timeout): still stop the server (finally below).
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    sizes = {
        # default (CI) vs --full
        "kills": (4, 22),
        "payments": (8, 40),
        # At most 30 s: the 4th attempt (>= 35 s after the first) then gets
        # through, before the job's 5 attempts are spent.
        "outage": (20.0, 30.0),
        "fuzz": (4, 25),
        "redelivery_items": (6, 24),
        "redelivery_payments": (2, 8),
        "tax_invoices": (2, 6),
    }
    for name, (small, full) in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, full if args.full else small)
    only = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}")
    standin_port = args.standin_port or args.port + 2
    began = time.monotonic()
    harness.STATE_DIR.mkdir(exist_ok=True)
    if not (args.reuse_db and harness.database_exists(args.db)):
        print(f"creating database {args.db} ({MODULES}, demo data) ...", flush=True)
        harness.create_database(
            args.db,
            KEY,
            MODULES,
            harness.STATE_DIR / f"fault-install-{args.db}.log",
            FAULT_ADDONS,
        )
        print(f"  installed in {time.monotonic() - began:.0f} s", flush=True)
    tls = harness.make_tls_files()
    # Odoo trusts what docker/run.sh gives it on a machine that presets a CA
    # bundle without the stand-in's CA (a corporate proxy's, a CI runner's).
    preset = preset_ca_bundle(harness.STATE_DIR / "standin-preset")
    ca_bundle = run_sh_ca_bundle(preset)
    rows = []
    avatax_port = standin_port + 1

    def start_server(bundle, append_log=False):
        return harness.OdooServer(
            args.db,
            args.port,
            KEY,
            ca_bundle=bundle,
            extra_addons=FAULT_ADDONS,
            extra_env={
                "QTC_FAULT_AVATAX_URL": f"https://127.0.0.1:{avatax_port}",
                # The stand-ins are allowed as the server configuration allows
                # a destination (connector requests otherwise go only to the
                # providers' hosts, never to the loopback).
                "QTC_ALLOWED_HOSTS": (
                    f"127.0.0.1:{standin_port},127.0.0.1:{avatax_port}"
                ),
            },
            append_log=append_log,
        )

    server = start_server(ca_bundle)
    suite = None
    try:
        with (
            harness.SalesforceStandIn(standin_port, tls, "") as standin,
            harness.AvaTaxStandIn(avatax_port, tls) as avatax,
        ):
            rpc = Rpc(server.url, args.db)
            demo = demo_mod.Demo(rpc, standin, timeout=args.settle_timeout, out=print)
            standin.org_id = demo.org_id
            demo.configure()
            print("playing the demo engagement ...", flush=True)
            reached = demo_mod.play(demo)
            suite = Suite(args, server, standin, rpc, demo)
            suite.start_server = lambda bundle: start_server(bundle, append_log=True)
            suite.ca_bundle = ca_bundle
            suite.preset_bundle = preset
            suite.reached = reached
            suite.avatax = avatax
            for name in only:
                print(f"\n== scenario {name}", flush=True)
                started = time.monotonic()
                try:
                    row = getattr(suite, f"scenario_{name}")()
                except Exception as exc:  # a scenario that breaks is a failure
                    row = Row(name)
                    row.failures.append(f"{type(exc).__name__}: {exc}")
                rows.append(row)
                print(
                    f"   {row.scenario}: {'ok' if row.ok else 'FAILED'} "
                    f"({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    finally:
        if suite is not None:
            server = suite.server  # the scenarios may have restarted it
        server.stop()
    errors = harness.log_errors(server.log_path)
    print_table(rows)
    print(
        f"\nserver log: {len(errors)} ERROR line(s) ({server.log_path}); "
        f"whole run {time.monotonic() - began:.0f} s"
    )
    for line in errors[:10]:
        print("  " + line[:300])
    if not args.keep_db:
        harness.drop_database(args.db, KEY)
    failed = [row for row in rows if not row.ok]
    return 1 if failed or len(rows) < len(only) else 0


if __name__ == "__main__":
    sys.exit(main())
