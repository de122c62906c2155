#!/usr/bin/env python3
"""Benchmark of qtc_stripe's cash application, end to end, against its floor.

    python3 tests/bench/bench_stripe.py [--sizes 1000[,10000]] [--workers 2]
                                        [--clients 8] [--after-posts] [--keep-db]

For each size N, in one database and one run:

1. N customers and 3N posted customer invoices are created in bulk (N for the
   events, N for each baseline);
2. N ``payment_intent.succeeded`` events, shaped as Stripe sends them (the
   fixture objects of ``addons/qtc_stripe/tests/fixtures``), each naming its
   invoice in ``metadata.odoo_invoice`` for exactly the invoice's total, are
   signed with the documented ``Stripe-Signature`` scheme and POSTed TWICE
   each, shuffled, from several client threads to ``/qtc/stripe/<id>/webhook``
   of a real Odoo server (2 HTTP workers, loopback); the ack latency of every
   POST is recorded;
3. job worker processes (the cron worker loop, ``_qtc_run_worker``'s
   ``_qtc_run_one``) apply the events: payment created, posted and reconciled
   with the invoice. Each event has its own job; the job a worker claims takes
   up to ``const.BATCH_SIZE`` ready events of the backend into its
   transaction (qtc_stripe/applier.py). By default the workers run
   while the POSTs come in, as in production (``--after-posts``: once every
   POST is answered, to see the apply phase alone); the backend's job channel
   has the product's default capacity (2: two batches at a time);
4. the baseline: the same number of processes create, post and reconcile a
   bare ``account.payment`` for each of the next N invoices, one by one, one
   transaction per payment, as a user registering payments would;
5. the batched baseline (``--no-batched-baseline`` to skip): the same
   processes, for the last N invoices, create ``const.BATCH_SIZE`` bare
   payments with one ``create``, post them with one ``action_post`` and
   reconcile them with one reconciliation plan per transaction: the floor of
   the batched path, with none of its bookkeeping (events, jobs, bindings,
   trace).

Printed: ack p50/p99, events/s end to end (first POST to last payment
reconciled), the apply phase alone, queries and busy milliseconds per event in
the workers (Odoo's ``sql_counter`` and wall time inside each job), the same
per payment for both baselines, the rates and the ratios; payments created
(duplicates = payments - N), invoices paid, events by state, batches.
Requests go to 127.0.0.1 only, every loop is bounded in time, and the script
stops the server and the processes it started.
"""

import argparse
import calendar
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_base
from bench_base import ROOT, Server, env_vars, odoo_paths

STRIPE = ROOT / "addons" / "qtc_stripe"
SECRET = "whsec_bench_stripe_0123456789"


def _load(name, path):
    """Import a plain module of the addon by path (the addon itself imports
    odoo; its lib/ and fixture helpers do not)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stripe_signature = _load("stripe_signature", STRIPE / "lib" / "signature.py")
stripe_fixtures = _load(
    "stripe_fixtures", STRIPE / "tests" / "unit" / "stripe_fixtures.py"
)


def run_odoo_script(db, script, *args, timeout=3600):
    """Run ``script`` in a fresh Python with the Odoo registry of ``db``; the
    script gets ``registry`` and ``sys.argv[1:] == args``. Returns stdout."""
    preamble = f"""
import sys, time, json, odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", {db!r}, "--addons-path", {odoo_paths()!r},
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry({db!r})
"""
    out = subprocess.run(
        [sys.executable, "-c", preamble + script, *map(str, args)],
        env=env_vars(),
        cwd="/",
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.stdout


def create_db(db):
    bench_base.create_db(db, "qtc_stripe")


CONFIGURE_SCRIPT = """
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    company = env.ref("base.main_company")
    if not company.chart_template:
        # A fresh database without demo data has no chart of accounts.
        env["account.chart.template"].try_loading("generic_coa", company)
    journal = env["account.journal"].search(
        [("code", "=", "STRB"), ("company_id", "=", company.id)]
    ) or env["account.journal"].create(
        {"name": "Stripe balance (bench)", "type": "bank", "code": "STRB"}
    )
    backend = env["qtc.backend"].search([("name", "=", "stripe bench")]) or env[
        "qtc.backend"
    ].create(
        {
            "name": "stripe bench",
            "provider": "stripe",
            "state": "active",
            "environment": "sandbox",
            "stripe_journal_id": journal.id,
        }
    )
    backend._qtc_set_secret("webhook_secret", sys.argv[1])
    capacity = int(sys.argv[2])
    channel = env["qtc.job.channel"].search([("name", "=", "stripe bench")]) or env[
        "qtc.job.channel"
    ].create({"name": "stripe bench"})
    channel.capacity = capacity
    backend.job_channel_id = channel
    print(json.dumps({"backend": backend.id, "journal": journal.id,
                      "currency": company.currency_id.name,
                      "chart": company.chart_template}))
"""


SETUP_SCRIPT = """
# Bulk set-up of one size: N customers, 2N posted invoices (chunks, one
# transaction each). Writes the invoices to a JSON file.
size, tag, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
chunk = 500
kinds = sys.argv[4].split(",")
created = {kind: [] for kind in kinds}
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    partners = env["res.partner"].create(
        [{"name": f"Bench {tag} customer {n}"} for n in range(size)]
    )
    partner_ids = partners.ids
    cr.commit()
for kind in kinds:
    for start in range(0, size, chunk):
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            values = []
            for n in range(start, min(size, start + chunk)):
                # Varied totals, some shared: amounts alone do not identify.
                price = 50 + (n * 7919 % 100000) / 100
                values.append({
                    "move_type": "out_invoice",
                    "partner_id": partner_ids[n],
                    "invoice_line_ids": [(0, 0, {
                        "name": f"Bench service {n}",
                        "quantity": 1,
                        "price_unit": price,
                        "tax_ids": [(6, 0, [])],
                    })],
                })
            moves = env["account.move"].create(values)
            moves.action_post()
            for move in moves:
                created[kind].append(
                    [move.id, move.name, move.amount_total, move.currency_id.name]
                )
            cr.commit()
with open(out_path, "w") as out:
    json.dump(created, out)
"""


# A worker process: loads the registry, says "ready", waits for "go" on stdin,
# then claims and runs jobs (the cron worker loop's ``_qtc_run_one``) until the
# POSTs are done (a flag file) and no job is ready, or its deadline. Counts the
# queries and the wall time spent inside jobs that ran.
WORKER_SCRIPT = """
import os
import odoo.sql_db
flag, deadline_s = sys.argv[1], float(sys.argv[2])
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["qtc.job"].search([], limit=1)
print("ready", flush=True)
sys.stdin.readline()
began = time.time()
deadline = time.monotonic() + deadline_s
ran = queries = 0
busy = 0.0
with registry.cursor() as cr:
    jobs = api.Environment(cr, SUPERUSER_ID, {})["qtc.job"]
    while time.monotonic() < deadline:
        before, started = odoo.sql_db.sql_counter, time.perf_counter()
        outcome = jobs._qtc_run_one()
        if outcome:
            ran += 1
            queries += odoo.sql_db.sql_counter - before
            busy += time.perf_counter() - started
        elif outcome is False:
            if os.path.exists(flag):
                break
            time.sleep(0.02)
print(ran, began, time.time(), queries, busy, flush=True)
"""


BASELINE_SCRIPT = """
# The floor: a bare account.payment create + action_post + reconcile with the
# invoice's receivable line, one transaction per payment (one by one, as a
# user registering payments would), or with --batch B: B payments per
# transaction, created with one create, posted with one action_post and
# reconciled with one reconciliation plan.
import odoo.sql_db
journal_id, ids, batch = int(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["account.move"].browse(ids[:1]).read(["name"])
print("ready", flush=True)
sys.stdin.readline()
began = time.time()
before = odoo.sql_db.sql_counter


def values(invoice):
    return {
        "payment_type": "inbound",
        "partner_type": "customer",
        "partner_id": invoice.commercial_partner_id.id,
        "amount": invoice.amount_residual,
        "currency_id": invoice.currency_id.id,
        "journal_id": journal_id,
        "memo": "bench baseline",
        "payment_reference": f"baseline {invoice.name}",
    }


def receivable(payment, invoice):
    return (payment.move_id.line_ids + invoice.line_ids).filtered(
        lambda line: line.account_id.account_type == "asset_receivable"
        and not line.reconciled
    )


def pay_one(env, invoice_ids):
    invoice = env["account.move"].browse(invoice_ids)
    payment = env["account.payment"].create(values(invoice))
    payment.action_post()
    receivable(payment, invoice).reconcile()


def pay_batch(env, invoice_ids):
    invoices = env["account.move"].browse(invoice_ids)
    payments = env["account.payment"].create([values(invoice) for invoice in invoices])
    payments.action_post()
    env["account.move.line"]._reconcile_plan([
        receivable(payment, invoice) for payment, invoice in zip(payments, invoices)
    ])


# Two processes posting in one journal at once may compute the same entry
# number; the loser's transaction fails and is done again, as a user would.
import psycopg2
retries = 0
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    chunks = (
        [ids[n] for n in range(len(ids))] if batch <= 1
        else [ids[n:n + batch] for n in range(0, len(ids), batch)]
    )
    for chunk in chunks:
        for _attempt in range(20):
            try:
                (pay_one if batch <= 1 else pay_batch)(env, chunk)
                env.flush_all()
                cr.commit()
                break
            except psycopg2.Error:
                cr.rollback()
                retries += 1
            finally:
                env.invalidate_all()
ended = time.time()
print(len(ids), began, ended, odoo.sql_db.sql_counter - before, ended - began,
      retries, flush=True)
"""


PROBE_SCRIPT = """
# Per-event cost in ONE process and ONE transaction (rolled back), four ways on
# fresh invoices of the same kind: the connector's batched path (the first job
# takes the others), its single path (batch size 1: one event per job), a bare
# payment create + post + reconcile one by one, and the same bare work batched.
import json as _json
from unittest.mock import patch
import odoo.sql_db
from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent
from odoo.addons.qtc_stripe import const
from odoo.addons.qtc_stripe.tests.unit.stripe_fixtures import load, make_event

size, backend_id, journal_id = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = {}
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    backend = env["qtc.backend"].browse(backend_id)
    partners = env["res.partner"].create(
        [{"name": f"Probe customer {n}"} for n in range(size)])
    stamp = int(time.time())

    def invoices():
        moves = env["account.move"].create([{
            "move_type": "out_invoice",
            "partner_id": partner.id,
            "invoice_line_ids": [(0, 0, {
                "name": "Probe", "quantity": 1, "price_unit": 10 + n,
                "tax_ids": [(6, 0, [])],
            })],
        } for n, partner in enumerate(partners)])
        moves.action_post()
        env.flush_all()
        return moves

    def measure(way, work):
        env.flush_all()
        env.invalidate_all()
        before, began = odoo.sql_db.sql_counter, time.perf_counter()
        work()
        env.flush_all()
        out[way] = ((odoo.sql_db.sql_counter - before) / size,
                    1000 * (time.perf_counter() - began) / size)

    def events_for(moves, way):
        bodies = []
        for n, move in enumerate(moves):
            intent = load("payment_intent")
            minor = round(move.amount_total * 100)
            intent.update(id=f"pi_probe_{way}_{stamp}_{n}", status="succeeded",
                          amount=minor, amount_received=minor,
                          currency=move.currency_id.name.lower(), customer=None,
                          latest_charge=f"ch_probe_{way}_{stamp}_{n}",
                          metadata={"odoo_invoice": move.name}, created=stamp,
                          canceled_at=None, last_payment_error=None)
            event = make_event("payment_intent.succeeded", intent,
                               event_id=f"evt_probe_{way}_{stamp}_{n}", created=stamp)
            bodies.append(InboundEvent(event["id"], event["type"], _json.dumps(event)))
        return bodies

    def run_events(moves, way):
        backend._qtc_store_events(events_for(moves, way))
        env.flush_all()
        ran = env["qtc.job"]._qtc_run_pending_inline(limit=10 * size)
        paid = sum(1 for move in moves if move.payment_state in ("paid", "in_payment"))
        assert paid == size, (way, paid, ran)

    def bare(moves, batch):
        values = [{
            "payment_type": "inbound", "partner_type": "customer",
            "partner_id": move.commercial_partner_id.id,
            "amount": move.amount_residual, "currency_id": move.currency_id.id,
            "journal_id": journal_id, "memo": "probe",
        } for move in moves]

        def lines(payment, move):
            return (payment.move_id.line_ids + move.line_ids).filtered(
                lambda line: line.account_id.account_type == "asset_receivable"
                and not line.reconciled)

        if batch:
            payments = env["account.payment"].create(values)
            payments.action_post()
            env["account.move.line"]._reconcile_plan(
                [lines(p, m) for p, m in zip(payments, moves)])
        else:
            for value, move in zip(values, moves):
                payment = env["account.payment"].create(value)
                payment.action_post()
                lines(payment, move).reconcile()

    moves = invoices()
    measure("batched", lambda: run_events(moves, "batched"))
    moves = invoices()
    with patch.object(const, "BATCH_SIZE", 1):
        measure("single", lambda: run_events(moves, "single"))
    moves = invoices()
    measure("bare", lambda: bare(moves, False))
    moves = invoices()
    measure("bare_batched", lambda: bare(moves, True))
    cr.rollback()
print(_json.dumps(out))
"""


def probe(db, setup, size):
    """Queries and ms per event in one process and transaction, four ways."""
    out = run_odoo_script(
        db, PROBE_SCRIPT, size, setup["backend"], setup["journal"], timeout=1800
    )
    figures = json.loads(out.strip().splitlines()[-1])
    words = {
        "batched": "connector, batched path (one job takes the others)",
        "single": "connector, one event per job (batch size 1)",
        "bare": "bare create + post + reconcile, one by one",
        "bare_batched": "bare create + post + reconcile, batched",
    }
    print(f"\n== one process, one transaction (rolled back), {size} events per way")
    for way, (queries, ms) in figures.items():
        print(f"  {words[way]}: {queries:.1f} queries and {ms:.1f} ms per event")
    return figures


def configure(db, capacity):
    out = run_odoo_script(db, CONFIGURE_SCRIPT, SECRET, capacity)
    return json.loads(out.strip().splitlines()[-1])


def set_up_invoices(db, size, tag, kinds):
    print(
        f"  creating {size} customers and {len(kinds) * size} posted invoices ...",
        flush=True,
    )
    began = time.monotonic()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        path = handle.name
    try:
        run_odoo_script(db, SETUP_SCRIPT, size, tag, path, ",".join(kinds))
        with open(path) as handle:
            created = json.load(handle)
    finally:
        os.unlink(path)
    print(f"  set up in {time.monotonic() - began:.0f} s", flush=True)
    return created


def minor_units(amount, currency):
    """Stripe's integer amount for a two-decimal currency (the bench uses the
    company currency, two decimals)."""
    if currency in ("JPY", "KWD", "BHD"):
        raise SystemExit(f"the bench expects a two-decimal currency, not {currency}")
    return round(amount * 100)


def build_events(invoices, tag):
    """One ``payment_intent.succeeded`` event (JSON bytes) per invoice."""
    now = int(time.time())
    bodies = []
    for n, (_id, name, total, currency) in enumerate(invoices):
        intent = stripe_fixtures.load("payment_intent")
        minor = minor_units(total, currency)
        intent.update(
            id=f"pi_bench_{tag}_{n:06d}",
            status="succeeded",
            amount=minor,
            amount_received=minor,
            currency=currency.lower(),
            customer=None,
            latest_charge=f"ch_bench_{tag}_{n:06d}",
            metadata={"odoo_invoice": name},
            created=now,
            canceled_at=None,
            last_payment_error=None,
        )
        event = stripe_fixtures.make_event(
            "payment_intent.succeeded",
            intent,
            event_id=f"evt_bench_{tag}_{n:06d}",
            created=now,
        )
        bodies.append(json.dumps(event).encode())
    return bodies


def post_all(url, bodies, clients, deadline_s):
    """POST every body once from ``clients`` threads, signing each at send
    time. Returns (latencies ms, errors, first POST time, last answer time)."""
    latencies = []
    statuses = {}
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    stop_at = time.monotonic() + deadline_s

    def client():
        session = requests.Session()
        mine = []
        seen = {}
        while time.monotonic() < stop_at:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            body = bodies[index]
            header = stripe_signature.sign(body, SECRET)
            started = time.perf_counter()
            try:
                status = session.post(
                    url,
                    data=body,
                    headers={
                        "Content-Type": "application/json",
                        stripe_signature.HEADER: header,
                    },
                    timeout=30,
                ).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            mine.append((time.perf_counter() - started) * 1000)
            seen[status] = seen.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=client) for _ in range(clients)]
    first = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    last = time.time()
    return sorted(latencies), statuses, first, last


def spawn(db, script, *args):
    """Start a script process and wait until it has loaded the registry."""
    preamble = f"""
import sys, time, json, odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", {db!r}, "--addons-path", {odoo_paths()!r},
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry({db!r})
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", preamble + script, *map(str, args)],
        env=env_vars(),
        cwd="/",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"process did not start: {line!r}")
    return proc


def go(procs):
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()


def finish(procs, timeout):
    """Wait for the processes; returns their (count, began, ended, queries,
    busy seconds) lines."""
    results = []
    for proc in procs:
        try:
            out, _err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _err = proc.communicate()
        parts = out.split()
        results.append(
            (
                int(parts[0]),
                float(parts[1]),
                float(parts[2]),
                int(parts[3]),
                float(parts[4]),
                int(parts[5]) if len(parts) > 5 else 0,
            )
        )
    return results


def percentile(values, fraction):
    return values[min(len(values) - 1, int(len(values) * fraction))]


def utc_epoch(naive):
    return calendar.timegm(naive.timetuple()) + naive.microsecond / 1e6


def outcome(db, tag, journal_id, invoice_ids):
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute(
            "SELECT state, count(*) FROM qtc_event WHERE external_id LIKE %s "
            "GROUP BY state",
            (f"evt_bench_{tag}_%",),
        )
        states = dict(cr.fetchall())
        cr.execute(
            "SELECT count(*), count(DISTINCT payment_reference) FROM account_payment "
            "WHERE journal_id = %s AND payment_reference LIKE %s",
            (journal_id, f"pi_bench_{tag}_%"),
        )
        payments, distinct = cr.fetchone()
        cr.execute(
            "SELECT payment_state, count(*) FROM account_move WHERE id = ANY(%s) "
            "GROUP BY payment_state",
            (invoice_ids,),
        )
        paid = dict(cr.fetchall())
        cr.execute(
            "SELECT max(j.done_at) FROM qtc_job j JOIN qtc_event e "
            "ON e.id = j.event_id WHERE e.external_id LIKE %s AND j.state = 'done'",
            (f"evt_bench_{tag}_%",),
        )
        last_done = cr.fetchone()[0]
        cr.execute(
            "SELECT count(*), sum(attempts - 1) FROM qtc_job j JOIN qtc_event e "
            "ON e.id = j.event_id WHERE e.external_id LIKE %s",
            (f"evt_bench_{tag}_%",),
        )
        jobs, retries = cr.fetchone()
        cr.execute(
            "SELECT count(*) FROM qtc_exception x JOIN qtc_event e "
            "ON e.id = x.event_id WHERE e.external_id LIKE %s",
            (f"evt_bench_{tag}_%",),
        )
        exceptions = cr.fetchone()[0]
        # Jobs that led a batch report its size as their progress total.
        cr.execute(
            "SELECT count(*), COALESCE(max(p.total), 0) FROM qtc_job_progress p "
            "JOIN qtc_job j ON j.id = p.job_id JOIN qtc_event e ON e.id = j.event_id "
            "WHERE e.external_id LIKE %s AND p.total > 1",
            (f"evt_bench_{tag}_%",),
        )
        batches, largest = cr.fetchone()
    return {
        "states": states,
        "payments": payments,
        "distinct": distinct,
        "paid": paid,
        "last_done": utc_epoch(last_done) if last_done else None,
        "jobs": jobs,
        "retries": retries or 0,
        "exceptions": exceptions,
        "batches": batches,
        "largest": largest,
    }


def run_baseline(db, journal, invoices, workers, batch, budget):
    """Bare payments for ``invoices`` from ``workers`` processes; returns
    (count, seconds, queries, busy seconds)."""
    ids = [row[0] for row in invoices]
    slices = [ids[n::workers] for n in range(workers)]
    procs = [
        spawn(db, BASELINE_SCRIPT, journal, json.dumps(part), batch) for part in slices
    ]
    go(procs)
    results = finish(procs, budget)
    count = sum(r[0] for r in results)
    seconds = max(r[2] for r in results) - min(r[1] for r in results)
    return (
        count,
        seconds,
        sum(r[3] for r in results),
        sum(r[4] for r in results),
        sum(r[5] for r in results),
    )


def bench_size(db, setup, port, size, args):
    tag = f"{size}x{int(time.time()) % 100000}"
    print(f"\n== N = {size:,} (tag {tag})", flush=True)
    kinds = ["events", "baseline"] + ([] if args.no_batched_baseline else ["batched"])
    created = set_up_invoices(db, size, tag, kinds)
    event_invoices = created["events"]
    bodies = build_events(event_invoices, tag)
    deliveries = bodies + bodies  # every event delivered twice
    random.Random(size).shuffle(deliveries)
    url = f"http://127.0.0.1:{port}/qtc/stripe/{setup['backend']}/webhook"
    budget = args.max_minutes * 60

    flag = Path(tempfile.gettempdir()) / f"bench_stripe_{tag}.posted"
    flag.unlink(missing_ok=True)
    workers = [spawn(db, WORKER_SCRIPT, flag, budget) for _ in range(args.workers)]
    server = Server(db, port, cron_threads=0)
    try:
        # Warm the HTTP workers (registry, route map) with an unsigned POST (401).
        for _ in range(4):
            requests.post(url, data=b"{}", timeout=30)
        if args.overlap:
            go(workers)
        latencies, statuses, first_post, last_ack = post_all(
            url, deliveries, args.clients, budget
        )
        flag.touch()
        apply_began = time.time()
        if not args.overlap:
            go(workers)
        worker_results = finish(workers, budget + 60)
    finally:
        server.stop()
        flag.unlink(missing_ok=True)
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    result = outcome(db, tag, setup["journal"], [row[0] for row in event_invoices])
    last_done = result["last_done"] or max(r[2] for r in worker_results)
    ingest_s = last_ack - first_post
    apply_start = first_post if args.overlap else apply_began
    apply_s = last_done - apply_start
    e2e_s = last_done - first_post
    jobs_ran = sum(r[0] for r in worker_results)
    event_queries = sum(r[3] for r in worker_results)
    event_busy = sum(r[4] for r in worker_results)

    # Baselines on the other invoices, same number of processes.
    base_count, base_s, base_queries, base_busy, base_retries = run_baseline(
        db, setup["journal"], created["baseline"], args.workers, 1, budget
    )
    base_rate = base_count / base_s
    batched = None
    if not args.no_batched_baseline:
        batched = run_baseline(
            db,
            setup["journal"],
            created["batched"],
            args.workers,
            args.batch_size,
            budget,
        )

    ok = sum(count for status, count in statuses.items() if status == 200)
    e2e_rate = size / e2e_s
    apply_rate = size / apply_s
    paid = result["paid"]
    print(
        f"  POSTs: {len(latencies):,} ({len(bodies):,} events x 2, shuffled) from "
        f"{args.clients} clients in {ingest_s:.1f} s = "
        f"{len(latencies) / ingest_s:.0f} req/s; answers {statuses}",
        flush=True,
    )
    print(
        f"  ack latency: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {latencies[-1]:.1f} ms"
    )
    print(
        f"  apply ({args.workers} worker processes, "
        f"{'during' if args.overlap else 'after'} the POSTs): {size:,} events in "
        f"{apply_s:.1f} s = {apply_rate:.1f} events/s; jobs {result['jobs']} "
        f"({jobs_ran} claimed by workers, {result['batches']} led a batch, "
        f"largest {result['largest']} events), retries {result['retries']}, "
        f"exceptions {result['exceptions']}"
    )
    print(
        f"  in the workers: {event_queries / size:.1f} queries and "
        f"{1000 * event_busy / size:.1f} ms busy per event "
        f"({event_queries:,} queries, {event_busy:.1f} s in jobs)"
    )
    print(
        f"  END TO END (first POST -> last payment reconciled): {e2e_s:.1f} s = "
        f"{e2e_rate:.1f} events/s"
    )
    print(
        f"  events by state: {result['states']}; payments created "
        f"{result['payments']} ({result['distinct']} distinct PaymentIntents), "
        f"duplicates = {result['payments'] - size}; invoices by payment_state: "
        f"{paid}"
    )
    print(
        f"  baseline (bare account.payment create + action_post + reconcile, one "
        f"by one, {args.workers} processes, one transaction per payment): "
        f"{base_count:,} in {base_s:.1f} s = {base_rate:.1f} payments/s; "
        f"{base_queries / base_count:.1f} queries and "
        f"{1000 * base_busy / base_count:.1f} ms per payment; "
        f"{base_retries} transactions redone after an entry-number collision",
        flush=True,
    )
    row = {
        "size": size,
        "e2e_s": e2e_s,
        "e2e_rate": e2e_rate,
        "apply_rate": apply_rate,
        "base_rate": base_rate,
        "p99": percentile(latencies, 0.99),
        "duplicates": result["payments"] - size,
        "paid": paid.get("paid", 0) + paid.get("in_payment", 0),
        "queries_per_event": event_queries / size,
        "ms_per_event": 1000 * event_busy / size,
        "base_queries": base_queries / base_count,
        "base_ms": 1000 * base_busy / base_count,
        "batched_rate": None,
    }
    if batched:
        count, seconds, queries, busy, retries = batched
        row["batched_rate"] = count / seconds
        print(
            f"  batched baseline (bare payments, {args.batch_size} per create / "
            f"action_post / reconciliation plan and transaction, "
            f"{args.workers} processes): {count:,} in {seconds:.1f} s = "
            f"{count / seconds:.1f} payments/s; {queries / count:.1f} queries "
            f"and {1000 * busy / count:.1f} ms per payment; {retries} batches "
            "redone after an entry-number collision",
            flush=True,
        )
    print(
        f"  ratio end to end / baseline: {e2e_rate / base_rate:.0%}; "
        f"apply phase / baseline: {apply_rate / base_rate:.0%}"
        + (
            f"; apply phase / batched baseline: {apply_rate / row['batched_rate']:.0%}"
            if row["batched_rate"]
            else ""
        )
        + f"  (HTTP 200 answers: {ok:,} of {len(latencies):,})",
        flush=True,
    )
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="qtc_bench_stripe")
    parser.add_argument("--port", type=int, default=8376)
    parser.add_argument(
        "--sizes", default="1000", help="comma-separated N, e.g. 1000,10000"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="payments per transaction of the batched baseline (the "
        "connector's const.BATCH_SIZE)",
    )
    parser.add_argument("--no-batched-baseline", action="store_true")
    parser.add_argument(
        "--probe",
        type=int,
        default=100,
        help="events per way of the one-transaction probe (0: skip)",
    )
    parser.add_argument(
        "--only-probe", action="store_true", help="skip the end-to-end runs"
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=2,
        help="capacity of the backend's job channel (the product's default: 2; "
        "0: unlimited; 1: one batch at a time)",
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--after-posts",
        dest="overlap",
        action="store_false",
        help="start applying once every POST is answered (default: while the "
        "POSTs come in)",
    )
    parser.add_argument(
        "--max-minutes", type=float, default=30, help="bound of each phase"
    )
    parser.add_argument(
        "--reuse-db", action="store_true", help="skip creating the database"
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not args.reuse_db:
        create_db(args.db)
    setup = configure(args.db, args.capacity)
    print(
        f"backend {setup['backend']} (job channel capacity {args.capacity}), "
        f"journal {setup['journal']}, currency "
        f"{setup['currency']}, chart {setup['chart']}",
        flush=True,
    )
    results = [
        bench_size(args.db, setup, args.port, int(size), args)
        for size in ([] if args.only_probe else args.sizes.split(","))
    ]
    if args.probe:
        probe(args.db, setup, args.probe)
    print("\nSummary against the goals (noisy: 2 cores shared with other work)")
    for row in results:
        print(
            f"  N={row['size']:,}: end to end {row['e2e_rate']:.1f} events/s = "
            f"{row['e2e_rate'] / row['base_rate']:.0%} of the bare payment rate "
            f"{row['base_rate']:.1f}/s (goal >= 50%); {row['size']:,} paid in "
            f"{row['e2e_s']:.0f} s (goal < 60 s for 1,000); ack p99 "
            f"{row['p99']:.0f} ms; duplicates {row['duplicates']} (goal 0); "
            f"invoices paid {row['paid']:,}; {row['queries_per_event']:.1f} "
            f"queries and {row['ms_per_event']:.1f} ms per event in the workers "
            f"vs {row['base_queries']:.1f} and {row['base_ms']:.1f} per bare payment"
            + (
                f"; batched bare rate {row['batched_rate']:.1f}/s"
                if row["batched_rate"]
                else ""
            )
        )
    if not args.keep_db:
        bench_base.drop_db(args.db)


if __name__ == "__main__":
    main()
