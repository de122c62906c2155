#!/usr/bin/env python3
"""Benchmark of the connector base, all in one run so the ratios hold.

    python3 tests/bench/bench_base.py [--duration 8] [--jobs 2000] [--keep-db]

Against a real Odoo server (2 HTTP workers) over loopback, with this machine's
PostgreSQL:

(a) the platform floor: ``GET /web/health`` and a bench-only route that inserts one
    row (``tests/bench/addons/qtc_bench``, never installed with the product);
(b) webhook ingest (signed, stored, job enqueued) at 1, 10 and 50 concurrent clients,
    then at 10 clients while two cron job workers work through a backlog;
(c) no-op job throughput with 1 and 2 worker processes, and enqueue-to-start latency
    with the server's cron workers woken by triggers;
(d) raw PostgreSQL: single-row INSERT+COMMIT, and a bare
    ``FOR UPDATE SKIP LOCKED`` claim-and-complete loop.

Every figure is printed with its ratio to its floor. Requests go to 127.0.0.1 only,
each load level is bounded in time, and the script stops the server it started.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[2]
BENCH_ADDONS = ROOT / "tests" / "bench" / "addons"
sys.path.insert(0, str(ROOT / "addons"))
# The signature scheme is plain Python; import it without loading the addon.
sys.path.insert(0, str(ROOT / "addons" / "qtc_connector_base" / "lib"))
import signature  # noqa: E402

SECRET = "whsec_bench_secret_0123456789"
KEY = "YmVuY2gta2V5LWZvci1xdGMtYmVuY2htYXJrcy0wMDA="


def odoo_paths():
    import odoo

    package = Path(odoo.__file__).parent
    paths = [package / "addons"]
    if (package.parent / "addons").is_dir():
        paths.append(package.parent / "addons")
    paths += [ROOT / "addons", BENCH_ADDONS]
    return ",".join(str(p) for p in paths)


def env_vars():
    return {**os.environ, "TZ": "UTC", "QTC_ENCRYPTION_KEY": KEY}


# With --workers, Odoo re-runs its own script for the websocket worker: start it
# from a real script file (docker/odoo_local.py), not ``-m odoo``.
LAUNCHER = str(ROOT / "docker" / "odoo_local.py")


def odoo_cmd(db, *args):
    return [sys.executable, LAUNCHER, "-d", db, "--addons-path", odoo_paths(), *args]


def drop_db(db):
    """Drop ``db`` if it exists."""
    subprocess.run(
        [sys.executable, "-m", "odoo", "db", "drop", db],
        capture_output=True,
        env=env_vars(),
        cwd="/",
        check=False,
    )


def create_db(db, addons="qtc_connector_base,qtc_bench"):
    """Drop ``db`` if it exists and create it with ``addons`` (no demo data)."""
    drop_db(db)
    print(f"creating database {db} with {addons} ...", flush=True)
    began = time.monotonic()
    subprocess.run(
        odoo_cmd(
            db,
            "-i",
            addons,
            "--stop-after-init",
            "--without-demo=all",
            "--log-level=warn",
            "--max-cron-threads=0",
        ),
        env=env_vars(),
        cwd="/",
        check=True,
    )
    print(f"  installed in {time.monotonic() - began:.0f} s", flush=True)


def configure(db):
    """Create an active backend with a webhook secret and return its id."""
    script = f"""
import odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", "{db}", "--addons-path", "{odoo_paths()}"])
registry = odoo.modules.registry.Registry("{db}")
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {{}})
    backend = env["qtc.backend"].create({{"name": "bench", "state": "active"}})
    backend._qtc_set_secret("webhook_secret", "{SECRET}")
    print(backend.id)
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env_vars(),
        cwd="/",
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


class Server:
    def __init__(self, db, port, cron_threads):
        self.port = port
        log_path = ROOT / ".qtc" / f"bench-server-{port}.log"
        log_path.parent.mkdir(exist_ok=True)
        log = open(log_path, "w")
        self.proc = subprocess.Popen(
            odoo_cmd(
                db,
                "--workers",
                "2",
                "--max-cron-threads",
                str(cron_threads),
                "--http-port",
                str(port),
                "--gevent-port",
                str(port + 1),
                "--db-filter",
                f"^{db}$",
                "--log-level",
                "warn",
                "--limit-time-real",
                "600",
            ),
            env=env_vars(),
            cwd="/",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url("/web/health"), timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("Odoo did not start; see .qtc/bench-server-*.log")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def load(make_request, clients, duration):
    """Run ``clients`` threads for ``duration`` seconds; return (rps, p50, p99 ms,
    errors)."""
    latencies = []
    errors = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client():
        session = requests.Session()
        mine = []
        bad = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                response = make_request(session)
                ok = response.status_code < 300
            except requests.RequestException:
                ok = False
            mine.append((time.perf_counter() - started) * 1000)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors.append(bad)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies), p99, sum(errors)


def signed_event(backend_id):
    def make(session):
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "bench.event"})
        header = signature.sign(body.encode(), SECRET)
        return session.post(
            f"{make.base}/qtc/webhook/{backend_id}",
            data=body,
            headers={"Content-Type": "application/json", signature.HEADER: header},
            timeout=30,
        )

    return make


def bench_http(db, backend_id, port, duration):
    print("\n(a)+(b) HTTP, server with 2 workers, crons off", flush=True)
    server = Server(db, port, cron_threads=0)
    results = {}
    try:
        base = server.url("")

        def health(session):
            return session.get(base + "/web/health", timeout=30)

        def insert(session):
            return session.post(
                base + "/qtc_bench/insert",
                data=b'{"x": 1}',
                headers={"Content-Type": "application/json"},
                timeout=30,
            )

        ingest = signed_event(backend_id)
        ingest.base = base
        load(insert, 2, 2)  # warm up workers and caches
        load(ingest, 2, 2)
        for clients in (1, 10, 50):
            results[("health", clients)] = load(health, clients, duration)
            results[("insert", clients)] = load(insert, clients, duration)
            results[("ingest", clients)] = load(ingest, clients, duration)
    finally:
        server.stop()
    for clients in (1, 10, 50):
        print(f"  -- {clients} client(s)")
        floor = results[("insert", clients)]
        for name in ("health", "insert", "ingest"):
            rps, p50, p99, errors = results[(name, clients)]
            label = {
                "health": "GET /web/health",
                "insert": "bare route, one INSERT (floor)",
                "ingest": "webhook ingest (signed, stored, job queued)",
            }[name]
            print(
                f"  {label:<45} {rps:7.1f} req/s ({rps / floor[0]:5.2f}x)  "
                f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms ({p99 / floor[2]:5.2f}x)  "
                f"errors {errors}",
                flush=True,
            )
    return results


def count_jobs(db, state):
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute("SELECT count(*) FROM qtc_job WHERE state = %s", (state,))
        return cr.fetchone()[0]


def enqueue_noops(db, count):
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute(
            """
            INSERT INTO qtc_job (name, state, model_name, method_name, record_ids,
                                 args, kwargs, priority, attempts, max_attempts,
                                 max_backoff, company_id, user_id, create_date,
                                 write_date)
            SELECT 'bench noop', 'pending', 'qtc.job', '_qtc_bench_noop', '[]',
                   '[]', '{}', 10, 0, 5, 3600, 1,
                   (SELECT res_id FROM ir_model_data
                     WHERE module = 'base' AND name = 'user_admin'),
                   now() at time zone 'utc',
                   now() at time zone 'utc'
              FROM generate_series(1, %s)
            """,
            (count,),
        )


WORKER_SCRIPT = """
import sys, time, odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", sys.argv[1], "--addons-path", sys.argv[2],
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry(sys.argv[1])
start_at = float(sys.argv[3])
while time.time() < start_at:
    time.sleep(0.001)
began = time.time()
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    ran = env["qtc.job"]._qtc_run_worker(max_seconds=300)
print(ran, began, time.time())
"""


def bench_jobs(db, jobs):
    print("\n(c) no-op jobs, worker processes running the cron worker loop", flush=True)
    figures = {}
    for workers in (1, 2):
        with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
            cr.execute("DELETE FROM qtc_job")
        enqueue_noops(db, jobs)
        start_at = time.time() + 8  # registries load before the start line
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER_SCRIPT, db, odoo_paths(), str(start_at)],
                env=env_vars(),
                cwd="/",
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(workers)
        ]
        outs = [p.communicate(timeout=600)[0].split() for p in procs]
        ran = sum(int(o[0]) for o in outs)
        began = min(float(o[1]) for o in outs)
        ended = max(float(o[2]) for o in outs)
        rate = ran / (ended - began)
        done = count_jobs(db, "done")
        figures[workers] = rate
        print(
            f"  {workers} worker(s): {ran} jobs in {ended - began:.2f} s = "
            f"{rate:.0f} jobs/s ({rate / workers:.0f}/s per worker, "
            f"{1000 * workers / rate:.2f} ms per job per worker); done in DB: {done}",
            flush=True,
        )
    return figures


def bench_latency(db, port, samples=20):
    print("\n    enqueue-to-start, server with 2 cron threads woken by triggers")
    server = Server(db, port, cron_threads=2)
    script = f"""
import sys, time, odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", "{db}", "--addons-path", "{odoo_paths()}",
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry("{db}")
ids = []
for n in range({samples}):
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {{}})
        job = env["qtc.job"]._qtc_enqueue(env["qtc.job"], "_qtc_bench_noop",
                                          kwargs={{"enqueued_at": time.time()}},
                                          user=env.ref("base.user_admin"))
        ids.append(job.id)
    time.sleep(0.5)
time.sleep(3)
with registry.cursor() as cr:
    cr.execute("SELECT result FROM qtc_job WHERE id = ANY(%s) AND state = 'done'",
               (ids,))
    print(" ".join(r[0] for r in cr.fetchall()))
"""
    try:
        time.sleep(5)  # let the cron workers reach their wait loop
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=env_vars(),
            cwd="/",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    finally:
        server.stop()
    delays = sorted(float(x) * 1000 for x in out)
    if not delays:
        print("  no job started: cron workers did not run")
        return None
    print(
        f"  {len(delays)}/{samples} started: p50 {statistics.median(delays):.0f} ms, "
        f"max {delays[-1]:.0f} ms",
        flush=True,
    )
    return delays


def bench_ingest_while_busy(db, backend_id, port, duration):
    print("\n(b) ingest at 10 clients while 2 cron workers drain a 5000-job backlog")
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute("DELETE FROM qtc_job")
    enqueue_noops(db, 5000)
    server = Server(db, port, cron_threads=2)
    try:
        ingest = signed_event(backend_id)
        ingest.base = server.url("")
        before = count_jobs(db, "done")
        rps, p50, p99, errors = load(ingest, 10, duration)
        after = count_jobs(db, "done")
    finally:
        server.stop()
    print(
        f"  ingest {rps:.1f} req/s p50 {p50:.1f} ms p99 {p99:.1f} ms errors {errors}; "
        f"jobs done meanwhile: {after - before}",
        flush=True,
    )


def bench_raw_pg(db, count=2000):
    print("\n(d) raw PostgreSQL floors", flush=True)
    conn = psycopg2.connect(dbname=db)
    cr = conn.cursor()
    cr.execute("CREATE TEMP TABLE bench_rows (id serial primary key, payload text)")
    conn.commit()
    began = time.perf_counter()
    for n in range(count):
        cr.execute("INSERT INTO bench_rows (payload) VALUES (%s)", (str(n),))
        conn.commit()
    insert_rate = count / (time.perf_counter() - began)
    cr.execute(
        "CREATE TEMP TABLE bench_queue (id serial primary key, state text, "
        "started timestamp, done timestamp)"
    )
    cr.execute(
        "INSERT INTO bench_queue (state) SELECT 'pending' FROM generate_series(1, %s)",
        (count,),
    )
    cr.execute("CREATE INDEX ON bench_queue (id) WHERE state = 'pending'")
    conn.commit()
    began = time.perf_counter()
    while True:
        cr.execute(
            "UPDATE bench_queue SET state = 'started', started = now() WHERE id = ("
            "SELECT id FROM bench_queue WHERE state = 'pending' ORDER BY id "
            "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
        )
        got = cr.fetchone()
        conn.commit()
        if not got:
            break
        cr.execute(
            "UPDATE bench_queue SET state = 'done', done = now() WHERE id = %s", got
        )
        conn.commit()
    claim_rate = count / (time.perf_counter() - began)
    conn.close()
    print(f"  single-row INSERT + COMMIT:              {insert_rate:8.0f} /s")
    print(
        f"  bare SKIP LOCKED claim + complete:       {claim_rate:8.0f} /s "
        f"({1000 / claim_rate:.2f} ms each)",
        flush=True,
    )
    return insert_rate, claim_rate


PRUNE_SCRIPT = """
import sys, time, odoo
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", sys.argv[1], "--addons-path", sys.argv[2],
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry(sys.argv[1])
batches = 0
deleted = 0
longest = 0.0
began = time.perf_counter()
while True:
    started = time.perf_counter()
    with registry.cursor() as cr:  # one transaction per batch, as the cron does
        env = api.Environment(cr, SUPERUSER_ID, {})
        n = env["qtc.job"]._qtc_prune(days=30)
    longest = max(longest, time.perf_counter() - started)
    batches += 1
    deleted += n
    if not n:
        break
print(deleted, batches, time.perf_counter() - began, longest)
"""


def bench_prune(db, rows):
    print(
        f"\n(e) pruning {rows:,} done jobs older than 30 days, in batches", flush=True
    )
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        cr.execute("DELETE FROM qtc_job")
        cr.execute(
            """
            INSERT INTO qtc_job (name, state, model_name, method_name, priority,
                                 attempts, max_attempts, max_backoff, company_id,
                                 create_date, write_date, done_at)
            SELECT 'old', 'done', 'qtc.job', '_qtc_bench_noop', 10, 1, 5, 3600, 1,
                   now() - interval '60 days', now() - interval '60 days',
                   now() - interval '60 days'
              FROM generate_series(1, %s)
            """,
            (rows,),
        )
    out = subprocess.run(
        [sys.executable, "-c", PRUNE_SCRIPT, db, odoo_paths()],
        env=env_vars(),
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    deleted, batches, total, longest = int(out[0]), int(out[1]), *map(float, out[2:])
    print(
        f"  deleted {deleted:,} in {batches} batches, {total:.1f} s in all; "
        f"longest batch transaction {longest * 1000:.0f} ms",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="qtc_bench")
    parser.add_argument("--port", type=int, default=8369)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--prune-rows", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    create_db(args.db)
    backend_id = configure(args.db)
    http = bench_http(args.db, backend_id, args.port, args.duration)
    bench_ingest_while_busy(args.db, backend_id, args.port, args.duration)
    jobs = bench_jobs(args.db, args.jobs)
    latency = bench_latency(args.db, args.port)
    insert_rate, claim_rate = bench_raw_pg(args.db)
    if args.prune_rows:
        bench_prune(args.db, args.prune_rows)

    print("\nSummary against the goals")
    floor10, ingest10 = http[("insert", 10)], http[("ingest", 10)]
    print(
        f"  ingest throughput at 10 clients: {ingest10[0] / floor10[0]:.0%} of the "
        f"bare route (goal >= 80%); p99 {ingest10[2] / floor10[2]:.2f}x (goal <= 1.5x)"
    )
    per_job_ms = 1000 / jobs[1]
    print(
        f"  job overhead: {per_job_ms:.2f} ms per no-op job with 1 worker = "
        f"{jobs[1]:.0f} jobs/s (goal <= 5 ms, >= 200/s); bare claim loop "
        f"{1000 / claim_rate:.2f} ms; 2 workers {jobs[2]:.0f} jobs/s"
    )
    if latency:
        print(
            f"  enqueue-to-start: p50 {statistics.median(latency):.0f} ms, "
            f"max {max(latency):.0f} ms (goal < 1000 ms)"
        )
    print(f"  raw INSERT+COMMIT floor: {insert_rate:.0f}/s")
    if not args.keep_db:
        drop_db(args.db)


if __name__ == "__main__":
    main()
