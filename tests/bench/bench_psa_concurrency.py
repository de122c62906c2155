#!/usr/bin/env python3
"""Benchmark: concurrent PSA pushes on the configuration a backend gets from nothing.

    python3 tests/bench/bench_psa_concurrency.py [--scenarios one,mixed,split]
                                                 [--items 5000] [--keep-db]

Creates its own database (``qtc_psa_timesheets`` without demo), 10 engagements
(a confirmed sale order of a service invoiced on timesheets, its project) and a
PSA push backend with a webhook secret and nothing else: no job channel, no
tuning. Two job worker processes run the queue's worker loop
(``qtc.job._qtc_run_worker``), as the two worker crons of an installation do.
Per scenario, 5,000 approved time items are pushed as 10 signed requests of
500 from 2 client threads to a real Odoo server (2 HTTP workers, loopback):

- ``one``: every item on ONE engagement;
- ``mixed``: the items of 10 engagements spread over the requests (each
  request carries 50 items of every engagement);
- ``split``: 10 engagements, one per request.

On a machine shared with other work, read the end-to-end figures as measured;
the Odoo CPU per item of the workers and of the baseline is printed too.

Printed per scenario: items/s end to end (first request sent -> last event
applied) and its ratio to ONE batched ``account.analytic.line.create`` of the
same lines in the same run (rolled back; goal >= 0.5x); the jobs, their
serialization/deadlock retries (run again at once) and attempts that failed
and waited for a backoff; the longest wait of a job (queued -> its last start,
whole seconds as Odoo stores them) and the longest from queued to done; each
worker's jobs and busy time, the share of the run during which both worked at
once; the ERROR lines the workers logged. Prints figures only, asserts
nothing; every wait is bounded and the script stops the server it started.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_base
import bench_psa
from bench_base import SECRET, Server, env_vars, odoo_paths

ENGAGEMENTS = 10
SCENARIOS = ("one", "mixed", "split")

SETUP_SCRIPT = (
    bench_psa.PRELUDE
    + """
engagements, employees_count, secret = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
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
        [{"name": f"Customer {n}"} for n in range(engagements)])
    orders = env["sale.order"].create([
        {"partner_id": customer.id, "order_line": [
            (0, 0, {"product_id": product.id, "product_uom_qty": 100000})]}
        for customer in customers
    ])
    orders.action_confirm()
    project_map = env.ref("qtc_psa_timesheets.qtc_value_map_psa_project")
    env["qtc.value.map.line"].create([
        {"map_id": project_map.id, "external_value": f"E-{n}",
         "res_id": order.order_line.project_id.id}
        for n, order in enumerate(orders)
    ])
    # A backend as created from nothing: no job channel, no tuning.
    backend = env["qtc.backend"].create(
        {"name": "PSA bench", "provider": "psa_push", "state": "active"})
    backend._qtc_set_secret("webhook_secret", secret)
    workers = env["qtc.job"]._qtc_worker_cron_ids()
    print(backend.id, len(workers))
"""
)

# A job worker process; it records when each job it ran started and ended
# (the runner's own per-job entry point, whatever happens inside it).
WORKER_SCRIPT = (
    bench_psa.PRELUDE
    + """
import odoo.sql_db
backend_id, expected, deadline = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
jobs_class = registry["qtc.job"]
perform = jobs_class._qtc_perform
spans = []

def timed_perform(self, cr, job):
    began = time.time()
    try:
        return perform(self, cr, job)
    finally:
        spans.append((job["id"], began, time.time()))

jobs_class._qtc_perform = timed_perform
print("ready", flush=True)
cpu_before = time.process_time()
while time.time() < deadline:
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        count = env["qtc.job"]._qtc_run_worker(max_seconds=20)
    if count:
        continue
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FILTER (WHERE state IN ('done', 'failed', 'ignored'))"
            "  FROM qtc_event WHERE backend_id = %s", (backend_id,))
        if cr.fetchone()[0] >= expected:
            break
    time.sleep(0.05)
print(json.dumps({"spans": spans, "cpu": time.process_time() - cpu_before}))
"""
)

BASELINE_SCRIPT = (
    bench_psa.PRELUDE
    + """
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
    started, cpu_before = time.perf_counter(), time.process_time()
    lines = env["account.analytic.line"].create(vals_list)
    env.flush_all()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    billed = sum(1 for line in lines if line.so_line)
    cr.rollback()
print(len(lines), elapsed, billed, cpu)
"""
)


def make_items(run, count, employees, scenario, batch):
    """``count`` approved time items; which engagement each belongs to is the
    scenario's (deterministic)."""

    def engagement(n):
        if scenario == "one":
            return 0
        if scenario == "mixed":
            return n % ENGAGEMENTS
        return (n // batch) % ENGAGEMENTS  # split: one engagement per request

    return [
        {
            "external_id": f"{run}-{n}",
            "version": 1,
            "kind": "time",
            "project_ref": f"E-{engagement(n)}",
            "employee_email": f"c{n % employees}@bench.example.com",
            "date": bench_psa.DAYS[n % len(bench_psa.DAYS)],
            "hours": str(1 + n % 8),
            "description": f"Work {n}",
            "billable": True,
            "approved_at": "2026-03-28T09:00:00Z",
            "status": "approved",
        }
        for n in range(count)
    ]


def job_figures(db, backend_id, since_job):
    """Jobs of the run: counts, retries and waits (from the job rows)."""
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'qtc_job' AND column_name = 'conflict_retries'"
        )
        retries_column = (
            "COALESCE(sum(conflict_retries), 0)" if cr.fetchone() else "NULL"
        )
        cr.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE state = 'done'),
                   {retries_column}, COALESCE(sum(attempts - 1), 0),
                   max(extract(epoch FROM started_at - create_date)),
                   max(extract(epoch FROM done_at - create_date))
              FROM qtc_job WHERE backend_id = %s AND id > %s
            """,
            (backend_id, since_job),
        )
        return cr.fetchone()


def last_job_id(db):
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute("SELECT COALESCE(max(id), 0) FROM qtc_job")
        return cr.fetchone()[0]


def overlap_seconds(spans_a, spans_b):
    """Seconds during which a job of each worker ran at once."""
    total = 0.0
    for _job, a0, a1 in spans_a:
        for _other, b0, b1 in spans_b:
            total += max(0.0, min(a1, b1) - max(a0, b0))
    return total


def run_scenario(args, backend_id, scenario, run):
    print(f"\n== {scenario}: {args.items:,} time items", flush=True)
    items = make_items(run, args.items, args.employees, scenario, args.batch)
    engagements = len({item["project_ref"] for item in items})
    _lines, states_before, _jobs = bench_psa.count_lines(args.db, backend_id)
    since_job = last_job_id(args.db)
    server = Server(args.db, args.port, cron_threads=0)
    workers, logs = [], []
    try:
        deadline = time.time() + args.timeout
        expected = sum(states_before.values()) + len(items)
        for _n in range(args.workers):
            log = tempfile.TemporaryFile(mode="w+")
            logs.append(log)
            workers.append(
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
                    stderr=log,
                    text=True,
                )
            )
        bench_psa.wait_ready(workers, deadline)
        bench_psa.warm_server(server.url(""), backend_id)
        began = time.monotonic()
        latencies, errors, push_seconds = bench_psa.push_all(
            server.url(""), backend_id, items, args.batch, args.clients
        )
        while time.time() < deadline:
            _lines, states, _jobs = bench_psa.count_lines(args.db, backend_id)
            finished = sum(states.get(s, 0) for s in ("done", "failed", "ignored"))
            if finished >= expected:
                break
            time.sleep(0.05)
        end_to_end = time.monotonic() - began
        outs = [json.loads(w.communicate(timeout=args.timeout)[0]) for w in workers]
    finally:
        server.stop()
        for worker in workers:
            if worker.poll() is None:  # only on a failure: they exit by themselves
                worker.terminate()
    error_lines = []
    for log in logs:
        log.seek(0)
        error_lines += [line for line in log if " ERROR " in line]
        log.close()
    _lines, states, _jobs = bench_psa.count_lines(args.db, backend_id)
    jobs, done, conflict_retries, backoff_retries, wait, latency = job_figures(
        args.db, backend_id, since_job
    )
    rate = len(items) / end_to_end
    baseline = bench_psa.run_script(BASELINE_SCRIPT, args.db, stdin=json.dumps(items))
    base_lines, base_seconds = int(baseline[0]), float(baseline[1])
    base_cpu = float(baseline[3]) * 1000 / base_lines
    base_rate = base_lines / base_seconds
    worker_cpu = sum(out["cpu"] for out in outs) * 1000 / len(items)
    spans = [out["spans"] for out in outs]
    busy = [sum(end - start for _job, start, end in mine) for mine in spans]
    both = overlap_seconds(spans[0], spans[1]) if len(spans) == 2 else 0.0
    retries = "n/a (not recorded)" if conflict_retries is None else conflict_retries
    print(
        f"  {engagements} engagement(s); {len(latencies)} requests from "
        f"{args.clients} clients acknowledged in {push_seconds:.1f} s "
        f"(p50 {sorted(latencies)[len(latencies) // 2]:.0f} ms), errors {errors}\n"
        f"  applied end to end in {end_to_end:.1f} s = {rate:,.0f} items/s; "
        f"events {states}\n"
        f"  baseline: ONE create of {base_lines:,} lines in {base_seconds:.1f} s = "
        f"{base_rate:,.0f} lines/s; ratio {rate / base_rate:.2f}x (goal >= 0.5x)\n"
        f"  jobs: {jobs} ({done} done); serialization/deadlock retries run at "
        f"once: {retries}; failed attempts that waited a backoff: "
        f"{backoff_retries}\n"
        f"  longest wait queued -> last start: {wait or 0:.0f} s; queued -> done: "
        f"{latency or 0:.0f} s\n"
        f"  workers: "
        + ", ".join(
            f"{len(mine)} jobs / {seconds:.1f} s busy ({seconds / end_to_end:.0%})"
            for mine, seconds in zip(spans, busy, strict=True)
        )
        + f"; both busy at once {both:.1f} s ({both / end_to_end:.0%} of the run)\n"
        f"  Odoo process CPU per item (less sensitive to other load; "
        f"PostgreSQL's own not included): job workers {worker_cpu:.2f} ms, "
        f"baseline {base_cpu:.2f} ms\n"
        f"  ERROR lines in the workers' log: {len(error_lines)}",
        flush=True,
    )
    for line in error_lines[:3]:
        print("    " + line.strip()[:200])
    return {
        "scenario": scenario,
        "rate": rate,
        "ratio": rate / base_rate,
        "retries": retries,
        "backoff": backoff_retries,
        "wait": wait or 0,
        "both": both / end_to_end,
        "errors": len(error_lines),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="qtc_bench_psa_cc")
    parser.add_argument("--port", type=int, default=8376)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--employees", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}")
    began = time.monotonic()
    bench_base.create_db(args.db, "qtc_psa_timesheets")
    out = bench_psa.run_script(
        SETUP_SCRIPT, args.db, ENGAGEMENTS, args.employees, SECRET
    )
    backend_id, crons = int(out[0]), int(out[1])
    print(
        f"set up: {ENGAGEMENTS} engagements on confirmed orders, {args.employees} "
        f"employees, backend {backend_id} as created (no job channel), "
        f"{crons} worker crons in the database, {args.workers} job worker "
        f"processes",
        flush=True,
    )
    results = [
        run_scenario(args, backend_id, scenario, f"R{n}")
        for n, scenario in enumerate(scenarios)
    ]
    print("\nSummary")
    for r in results:
        print(
            f"  {r['scenario']:<6} {r['rate']:6,.0f} items/s, ratio {r['ratio']:.2f}x,"
            f" retries at once {r['retries']}, backoff waits {r['backoff']}, "
            f"longest wait {r['wait']:.0f} s, both workers busy {r['both']:.0%} "
            f"of the run, worker ERROR lines {r['errors']}"
        )
    print(f"  whole benchmark: {time.monotonic() - began:.0f} s")
    if not args.keep_db:
        bench_base.drop_db(args.db)


if __name__ == "__main__":
    main()
