#!/usr/bin/env python3
"""Benchmark of the PSA push path end to end, against one batched ORM create.

    python3 tests/bench/bench_psa.py [--volumes 10000] [--large] [--capacity N]
                                     [--keep-db]

Creates its own database (``qtc_psa_timesheets`` without demo), N employees and
100 projects sold on confirmed sale orders (a service invoiced on timesheets),
the PSA project value map and a push backend with a webhook secret and nothing
else (no job channel: the configuration a backend gets from nothing). Then, per
volume:

- starts the job worker processes and waits until each has loaded its
  registry (long-running workers in production; their boot is not timed),
  and warms the HTTP workers with signed requests carrying no item;
- pushes that many approved time entries to a real Odoo server (2 HTTP workers,
  loopback only) in signed batches of the backend's ``psa_batch_max``, from
  several client threads, while worker processes run the job queue's worker
  loop (``qtc.job._qtc_run_worker``) until every event is applied;
- prints items/s end to end (first request sent -> last timesheet line
  created), the ack latency of each batch request (p50/p99), and the SQL
  queries per line the workers ran (Odoo's ``sql_counter`` in each worker);
- the baseline: ONE ``account.analytic.line.create(vals_list)`` of the same
  lines in one process (rolled back), its lines/s and queries per line, and
  the ratio.

Finally the time to invoice the delivered time of the 100 projects
(``sale.order._create_invoices()`` on the 100 orders, rolled back).
``--large`` adds the 100,000 run; ``--capacity N`` puts the backend on a job
channel of that capacity (to compare with the default). Prints figures only,
asserts nothing; every wait is bounded and the script stops the server it
started.
"""

import argparse
import json
import queue
import select
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_base
from bench_base import (
    SECRET,
    Server,
    env_vars,
    odoo_paths,
    signature,
)

PROJECTS = 100
DAYS = [f"2026-03-{day:02d}" for day in range(2, 28)]

PRELUDE = """
import sys, time, json, odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", sys.argv[1], "--addons-path", sys.argv[2],
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry(sys.argv[1])
"""

SETUP_SCRIPT = (
    PRELUDE
    + """
employees_count, projects_count, capacity, secret = (
    int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    hour = env.ref("uom.product_uom_hour")
    product = env["product.product"].create({
        "name": "Consulting (bench)", "type": "service",
        "invoice_policy": "delivery", "service_type": "timesheet",
        "service_tracking": "project_only", "list_price": 100.0,
        "uom_id": hour.id, "uom_po_id": hour.id, "taxes_id": [(6, 0, [])],
    })
    env["hr.employee"].create([
        {"name": f"Consultant {n}", "work_email": f"c{n}@bench.example.com"}
        for n in range(employees_count)
    ])
    customers = env["res.partner"].create(
        [{"name": f"Customer {n}"} for n in range(projects_count)])
    orders = env["sale.order"].create([
        {"partner_id": customer.id, "order_line": [
            (0, 0, {"product_id": product.id, "product_uom_qty": 1000})]}
        for customer in customers
    ])
    orders.action_confirm()
    project_map = env.ref("qtc_psa_timesheets.qtc_value_map_psa_project")
    env["qtc.value.map.line"].create([
        {"map_id": project_map.id, "external_value": f"P-{n}",
         "res_id": order.order_line.project_id.id}
        for n, order in enumerate(orders)
    ])
    channel = capacity and env["qtc.job.channel"].create(
        {"name": "PSA apply (bench)", "capacity": capacity})
    backend = env["qtc.backend"].create({
        "name": "PSA bench", "provider": "psa_push", "state": "active",
        "psa_batch_max": 500, "job_channel_id": channel.id if channel else False,
    })
    backend._qtc_set_secret("webhook_secret", secret)
    print(backend.id, ",".join(str(o.id) for o in orders))
"""
)

WORKER_SCRIPT = (
    PRELUDE
    + """
import odoo.sql_db
backend_id, expected, deadline = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
print("ready", flush=True)  # registry loaded: the bench starts its clock
ran = 0
queries = 0
busy = cpu = 0.0
while time.time() < deadline:
    before, started = odoo.sql_db.sql_counter, time.time()
    cpu_before = time.process_time()
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        count = env["qtc.job"]._qtc_run_worker(max_seconds=20)
    if count:
        ran += count
        queries += odoo.sql_db.sql_counter - before
        busy += time.time() - started
        cpu += time.process_time() - cpu_before
        continue
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FILTER (WHERE state IN ('done', 'failed', 'ignored')),"
            "       count(*) FROM qtc_event WHERE backend_id = %s", (backend_id,))
        finished, stored = cr.fetchone()
    if finished >= expected:
        break
    time.sleep(0.05)
print(ran, queries, busy, cpu)
"""
)

BASELINE_SCRIPT = (
    PRELUDE
    + """
import odoo.sql_db
count, run = int(sys.argv[3]), sys.argv[4]
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    mapping = env.ref("qtc_psa_timesheets.qtc_value_map_psa_project")
    projects = {line.external_value: line.res_id for line in mapping.line_ids}
    employees = {e.work_email: e.id for e in env["hr.employee"].search([])}
    items = json.loads(sys.stdin.read())
    vals_list = [
        {"name": item["description"], "project_id": projects[item["project_ref"]],
         "employee_id": employees[item["employee_email"]], "date": item["date"],
         "unit_amount": float(item["hours"])}
        for item in items
    ]
    env.flush_all()
    before, started = odoo.sql_db.sql_counter, time.perf_counter()
    cpu_before = time.process_time()
    lines = env["account.analytic.line"].create(vals_list)
    env.flush_all()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    queries = odoo.sql_db.sql_counter - before
    billed = sum(1 for line in lines if line.so_line)
    cr.rollback()
print(len(lines), elapsed, queries, billed, cpu)
"""
)

INVOICE_SCRIPT = (
    PRELUDE
    + """
order_ids = [int(x) for x in sys.argv[3].split(",")]
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    orders = env["sale.order"].browse(order_ids)
    env.flush_all()
    started = time.perf_counter()
    invoices = orders._create_invoices()
    env.flush_all()
    elapsed = time.perf_counter() - started
    amount = sum(invoices.mapped("amount_untaxed"))
    cr.rollback()
print(len(invoices), elapsed, amount)
"""
)


def run_script(script, db, *args, stdin=None, timeout=3600):
    out = subprocess.run(
        [sys.executable, "-c", script, db, odoo_paths(), *map(str, args)],
        env=env_vars(),
        cwd="/",
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise RuntimeError("bench script failed")
    return out.stdout.split()


def create_db(db):
    bench_base.create_db(db, "qtc_psa_timesheets")


def make_items(run, count, employees):
    """``count`` approved, billable time entries spread over projects, people
    and days (deterministic)."""
    return [
        {
            "external_id": f"{run}-{n}",
            "version": 1,
            "kind": "time",
            "project_ref": f"P-{n % PROJECTS}",
            "employee_email": f"c{n % employees}@bench.example.com",
            "date": DAYS[n % len(DAYS)],
            "hours": str(1 + n % 8),
            "description": f"Work {n}",
            "billable": True,
            "approved_at": "2026-03-28T09:00:00Z",
            "status": "approved",
        }
        for n in range(count)
    ]


def push_all(base_url, backend_id, items, batch_size, clients):
    """POST the items in signed batches from ``clients`` threads.

    :returns: (per-request latencies in ms, errors, seconds)
    """
    batches = queue.Queue()
    for start in range(0, len(items), batch_size):
        batches.put(items[start : start + batch_size])
    latencies, errors = [], []
    lock = threading.Lock()
    url = f"{base_url}/qtc/psa/{backend_id}/work_items"

    def client():
        session = requests.Session()
        while True:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                return
            body = json.dumps({"items": batch}).encode()
            headers = {
                "Content-Type": "application/json",
                signature.HEADER: signature.sign(body, SECRET),
            }
            started = time.perf_counter()
            try:
                response = session.post(url, data=body, headers=headers, timeout=120)
                ok = response.status_code == 200 and all(
                    answer["status"] == "accepted"
                    for answer in response.json()["items"]
                )
            except requests.RequestException:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies), len(errors), time.monotonic() - began


def count_lines(db, backend_id):
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM account_analytic_line l "
            "JOIN qtc_psa_item i ON i.id = l.psa_item_id WHERE i.backend_id = %s",
            (backend_id,),
        )
        lines = cr.fetchone()[0]
        cr.execute(
            "SELECT state, count(*) FROM qtc_event WHERE backend_id = %s "
            "GROUP BY state",
            (backend_id,),
        )
        states = dict(cr.fetchall())
        cr.execute(
            "SELECT state, count(*), sum(attempts) FROM qtc_job "
            "WHERE backend_id = %s GROUP BY state",
            (backend_id,),
        )
        jobs = {state: (n, attempts) for state, n, attempts in cr.fetchall()}
    return lines, states, jobs


def warm_server(base_url, backend_id, requests_count=8):
    """Signed requests carrying no item (answered without storing anything),
    sent concurrently so each HTTP worker loads its registry before the clock
    starts, as a server in service has."""
    url = f"{base_url}/qtc/psa/{backend_id}/work_items"
    body = json.dumps({"items": []}).encode()

    def post():
        headers = {
            "Content-Type": "application/json",
            signature.HEADER: signature.sign(body, SECRET),
        }
        try:
            requests.post(url, data=body, headers=headers, timeout=120)
        except requests.RequestException:
            pass  # the timed run reports errors

    threads = [threading.Thread(target=post) for _ in range(requests_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_ready(workers, deadline):
    """Wait until every worker process printed ``ready``; returns the seconds
    waited. Raises when one exits or the deadline passes first."""
    began = time.monotonic()
    waiting = list(workers)
    while waiting:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise RuntimeError("job workers did not start in time")
        readable, _w, _x = select.select(
            [worker.stdout for worker in waiting], [], [], min(remaining, 5)
        )
        for worker in list(waiting):
            if worker.stdout in readable:
                line = worker.stdout.readline()
                if line.strip() != "ready":
                    raise RuntimeError(f"job worker failed to start: {line!r}")
                waiting.remove(worker)
    return time.monotonic() - began


def run_volume(args, backend_id, run, count):
    print(f"\n== {count:,} time entries ({run})", flush=True)
    items = make_items(run, count, args.employees)
    lines_before, states_before, _jobs = count_lines(args.db, backend_id)
    server = Server(args.db, args.port, cron_threads=0)
    workers = []
    try:
        deadline = time.time() + args.timeout
        # Events of this run plus those of earlier runs (all finished).
        expected = sum(states_before.values()) + count
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER_SCRIPT,
                    args.db,
                    odoo_paths(),
                    str(backend_id),
                    str(expected),
                    str(deadline),
                ],
                env=env_vars(),
                cwd="/",
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.workers)
        ]
        # Job workers are long-running processes: the clock starts once each
        # has loaded its registry (bounded wait), not while they boot.
        boot = wait_ready(workers, deadline)
        warm_server(server.url(""), backend_id)
        began = time.monotonic()
        latencies, errors, push_seconds = push_all(
            server.url(""), backend_id, items, args.batch, args.clients
        )
        lines = lines_before
        while time.time() < deadline:
            lines, states, jobs = count_lines(args.db, backend_id)
            finished = sum(states.get(s, 0) for s in ("done", "failed", "ignored"))
            if finished >= expected:
                break
            time.sleep(0.1)
        end_to_end = time.monotonic() - began
        outs = [
            worker.communicate(timeout=args.timeout)[0].split() for worker in workers
        ]
    finally:
        server.stop()
        for worker in workers:
            if worker.poll() is None:  # only on a failure: they exit by themselves
                worker.terminate()
    lines, states, jobs = count_lines(args.db, backend_id)
    new_lines = lines - lines_before
    queries = sum(int(out[1]) for out in outs)
    ran = sum(int(out[0]) for out in outs)
    busy = sum(float(out[2]) for out in outs)
    cpu = sum(float(out[3]) for out in outs)
    rate = new_lines / end_to_end
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"  job workers ready after {boot:.1f} s (registry load, not timed)\n"
        f"  push: {len(latencies)} requests of {args.batch} items from "
        f"{args.clients} clients in {push_seconds:.1f} s "
        f"({count / push_seconds:,.0f} items/s acknowledged), errors {errors}\n"
        f"  ack latency per batch request: p50 {p50:.0f} ms, p99 {p99:.0f} ms\n"
        f"  applied: {new_lines:,} timesheet lines in {end_to_end:.1f} s end to end "
        f"= {rate:,.0f} items/s; events {states}; jobs {jobs}\n"
        f"  workers: {ran} jobs, {busy:.1f} s busy in all, {queries:,} queries = "
        f"{queries / max(new_lines, 1):.3f} queries per line",
        flush=True,
    )
    baseline = run_script(BASELINE_SCRIPT, args.db, count, run, stdin=json.dumps(items))
    base_lines, base_seconds, base_queries, billed, base_cpu = (
        int(baseline[0]),
        float(baseline[1]),
        int(baseline[2]),
        int(baseline[3]),
        float(baseline[4]),
    )
    base_rate = base_lines / base_seconds
    print(
        f"  baseline: ONE account.analytic.line.create of {base_lines:,} lines "
        f"({billed:,} with a sale line) in {base_seconds:.1f} s = "
        f"{base_rate:,.0f} lines/s, {base_queries / base_lines:.3f} queries per line\n"
        f"  ratio end to end / baseline: {rate / base_rate:.0%} (goal >= 50%)\n"
        f"  Odoo process CPU per line (less sensitive to other load; PostgreSQL's "
        f"own CPU not included): job workers {cpu * 1000 / max(new_lines, 1):.2f} ms, "
        f"baseline {base_cpu * 1000 / base_lines:.2f} ms, ratio "
        f"{(base_cpu / base_lines) / max(cpu / max(new_lines, 1), 1e-9):.0%}",
        flush=True,
    )
    return {
        "count": count,
        "rate": rate,
        "seconds": end_to_end,
        "queries_per_line": queries / max(new_lines, 1),
        "base_rate": base_rate,
        "p50": p50,
        "p99": p99,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="qtc_bench_psa")
    parser.add_argument("--port", type=int, default=8374)
    parser.add_argument("--volumes", default="10000")
    parser.add_argument("--large", action="store_true", help="add 100,000")
    parser.add_argument("--employees", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--capacity",
        type=int,
        default=0,
        help="put the backend on a job channel of this capacity (0, the "
        "default: no channel, as a backend is created)",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    volumes = [int(v) for v in args.volumes.split(",") if v]
    if args.large:
        volumes.append(100_000)
    began = time.monotonic()
    create_db(args.db)
    out = run_script(
        SETUP_SCRIPT,
        args.db,
        args.employees,
        PROJECTS,
        args.capacity,
        SECRET,
    )
    backend_id, order_ids = int(out[0]), out[1]
    print(
        f"set up: {args.employees} employees, {PROJECTS} projects on confirmed "
        f"orders, backend {backend_id}, job channel capacity "
        f"{args.capacity or 'none'}, job workers {args.workers}",
        flush=True,
    )
    results = [
        run_volume(args, backend_id, f"R{n}", count) for n, count in enumerate(volumes)
    ]
    invoices, seconds, amount = run_script(INVOICE_SCRIPT, args.db, order_ids)
    print(
        f"\ninvoicing: {invoices} invoices from {PROJECTS} orders' delivered time in "
        f"{float(seconds):.1f} s (untaxed {float(amount):,.0f}; rolled back)",
        flush=True,
    )
    print("\nSummary")
    for result in results:
        print(
            f"  {result['count']:>7,}: {result['rate']:6,.0f} items/s end to end "
            f"({result['seconds']:.0f} s), baseline {result['base_rate']:6,.0f}/s, "
            f"ratio {result['rate'] / result['base_rate']:.0%}; "
            f"{result['queries_per_line']:.3f} queries/line; ack p50 "
            f"{result['p50']:.0f} ms p99 {result['p99']:.0f} ms"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        scale = (last["seconds"] / first["seconds"]) / (last["count"] / first["count"])
        print(f"  time per item, largest vs smallest run: {scale:.2f}x (1.00 = linear)")
    print(f"  whole benchmark: {time.monotonic() - began:.0f} s")
    if not args.keep_db:
        bench_base.drop_db(args.db)


if __name__ == "__main__":
    main()
