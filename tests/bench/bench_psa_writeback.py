#!/usr/bin/env python3
"""Benchmark of the PSA billing write-back: what it adds to posting invoices,
and how fast its callbacks go out.

    python3 tests/bench/bench_psa_writeback.py --db <db> [--create]
        [--volumes 1000,10000] [--repeats 3]

Works in ONE transaction that is rolled back (the database is left as it was;
``--create`` first (re)creates it with ``qtc_psa_timesheets``, no demo). Per
volume N: 100 projects sold on confirmed orders, N approved time entries stored
and applied through the push path's batch job, then 100 draft invoices (one per
order, N/100 imported timesheets each), and:

- posting them with the write-back hook replaced by a no-op (what posting costs
  in Odoo without it);
- posting them with the write-back (items recorded + one job per invoice with
  its signed body): time, SQL queries, the ratio, and the write-back step alone
  (each posting rolled back and repeated; the fastest of ``--repeats`` counts);
- the 100 write-back jobs run against a local HTTP receiver (a thread on
  127.0.0.1 that checks each signature): callbacks/s and items/s.

Prints figures only, asserts nothing.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_base
from bench_base import env_vars, odoo_paths

SCRIPT = """
import hashlib, hmac, http.server, json, sys, threading, time
from unittest.mock import patch
import odoo, odoo.sql_db
from odoo import api, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", sys.argv[1], "--addons-path", sys.argv[2],
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry(sys.argv[1])
count, repeats = int(sys.argv[3]), int(sys.argv[4])
secret = "whsec_bench_billing_0123456789"
from odoo.addons.qtc_connector_base.lib import signature
from odoo.addons.qtc_psa_timesheets.lib import work_item as wi
from odoo.addons.qtc_psa_timesheets.models.account_move import AccountMove

received = {"ok": 0, "bad": 0, "items": 0}

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            signature.verify(self.headers[signature.HEADER], body, [secret])
            received["ok"] += 1
            received["items"] += len(json.loads(body)["items"])
            self.send_response(200)
        except signature.SignatureError:
            received["bad"] += 1
            self.send_response(401)
        self.end_headers()
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/billing"

def measure(env, func):
    env.flush_all()
    before, started = odoo.sql_db.sql_counter, time.perf_counter()
    result = func()
    env.flush_all()
    return result, time.perf_counter() - started, odoo.sql_db.sql_counter - before

with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    hour = env.ref("uom.product_uom_hour")
    product = env["product.product"].create({
        "name": "Consulting (bench)", "type": "service",
        "invoice_policy": "delivery", "service_type": "timesheet",
        "service_tracking": "project_only", "list_price": 100.0,
        "uom_id": hour.id, "uom_po_id": hour.id, "taxes_id": [(6, 0, [])],
    })
    employees = env["hr.employee"].create([
        {"name": f"Consultant {n}", "work_email": f"c{n}@wb.example.com"}
        for n in range(20)])
    customers = env["res.partner"].create(
        [{"name": f"Customer {n}"} for n in range(100)])
    orders = env["sale.order"].create([
        {"partner_id": c.id, "order_line": [
            (0, 0, {"product_id": product.id, "product_uom_qty": 100000})]}
        for c in customers])
    orders.action_confirm()
    project_map = env.ref("qtc_psa_timesheets.qtc_value_map_psa_project")
    env["qtc.value.map.line"].create([
        {"map_id": project_map.id, "external_value": f"WB-{n}",
         "res_id": order.order_line.project_id.id}
        for n, order in enumerate(orders)])
    backend = env["qtc.backend"].create({
        "name": "PSA write-back bench", "provider": "psa_push", "state": "active",
        "psa_batch_max": count, "psa_push_billing_url": url,
    })
    backend._qtc_set_secret("webhook_secret", "whsec_bench_push_0123456789")
    backend._qtc_set_secret("psa_billing_secret", secret)
    items = [
        {"external_id": f"WB-{n}", "version": 1, "kind": "time",
         "project_ref": f"WB-{n % 100}", "employee_email": f"c{n % 20}@wb.example.com",
         "date": f"2026-03-{2 + n % 26:02d}", "hours": str(1 + n % 8),
         "description": f"Work {n}", "billable": True,
         "approved_at": "2026-03-28T09:00:00Z", "status": "approved"}
        for n in range(count)]
    backend._psa_store_items(wi.validate_batch(items, max_items=count))
    env["qtc.job"]._qtc_run_pending_inline()
    lines = env["account.analytic.line"].search_count(
        [("psa_item_id.backend_id", "=", backend.id)])
    invoices = orders._create_invoices()
    env.flush_all()

    hook = {"s": 0.0, "q": 0}
    original_hook = AccountMove._psa_billing_changed

    def timed_hook(self, state):
        # What the posting left to compute is the posting's, not the hook's.
        self.env.flush_all()
        before, started = odoo.sql_db.sql_counter, time.perf_counter()
        original_hook(self, state)
        self.env.flush_all()
        hook["s"] += time.perf_counter() - started
        hook["q"] += odoo.sql_db.sql_counter - before

    def post(hooked):
        cr.execute("SAVEPOINT bench_post")
        with patch.object(AccountMove, "_psa_billing_changed", hooked):
            result = measure(env, invoices.action_post)
        cr.execute("ROLLBACK TO SAVEPOINT bench_post")
        env.invalidate_all()
        return result

    # Both postings run from the same point (rolled back each time), one
    # warm-up each, then alternately `repeats` times: the fastest of each
    # counts (the machine is shared; the minimum is the least disturbed).
    post(lambda self, state: None)
    post(timed_hook)
    plain, hooked, steps = [], [], []
    for _n in range(repeats):
        plain.append(post(lambda self, state: None)[1:])
        hook.update(s=0.0, q=0)
        hooked.append(post(timed_hook)[1:])
        steps.append((hook["s"], hook["q"]))
    plain_s, plain_q = min(plain)
    wb_s, wb_q = min(hooked)
    hook_s, hook_q = min(steps)
    # Once more, kept, for the jobs.
    env.flush_all()
    invoices.action_post()
    jobs = env["qtc.job"].search([("method_name", "=", "_psa_send_billing"),
                                  ("backend_id", "=", backend.id)])
    billed = env["qtc.psa.item"].search_count(
        [("backend_id", "=", backend.id), ("billed_state", "=", "posted")])
    body_bytes = sum(len(json.dumps(job.args)) for job in jobs)

    ran, send_s, send_q = measure(
        env, lambda: env["qtc.job"]._qtc_run_pending_inline(limit=1000))
    done = env["qtc.job"].search_count([("id", "in", jobs.ids), ("state", "=", "done")])
    server.shutdown()
    cr.rollback()
print(lines, len(invoices), plain_s, plain_q, wb_s, wb_q, len(jobs), billed,
      body_bytes, ran, done, send_s, send_q, received["ok"], received["bad"],
      received["items"], hook_s, hook_q)
"""


def run(db, count, repeats):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, db, odoo_paths(), str(count), str(repeats)],
        # The receiver listens on the loopback: allowed as the server
        # configuration allows a destination, never from the UI.
        env={**env_vars(), "QTC_ALLOWED_HOSTS": "127.0.0.1"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise RuntimeError("bench script failed")
    return out.stdout.split()[-18:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--create", action="store_true")
    parser.add_argument("--volumes", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.create:
        bench_base.create_db(args.db, "qtc_psa_timesheets")
    rows = []
    for count in (int(v) for v in args.volumes.split(",")):
        began = time.monotonic()
        (
            lines,
            invoices,
            plain_s,
            plain_q,
            wb_s,
            wb_q,
            jobs,
            billed,
            body_bytes,
            ran,
            done,
            send_s,
            send_q,
            ok,
            bad,
            items,
            hook_s,
            hook_q,
        ) = run(args.db, count, args.repeats)
        plain_s, wb_s, send_s = float(plain_s), float(wb_s), float(send_s)
        print(f"\n== {int(lines):,} imported timesheets on {invoices} invoices")
        print(
            f"  post without write-back: {plain_s:.2f} s, {plain_q} queries"
            f"\n  post with write-back:    {wb_s:.2f} s, {wb_q} queries "
            f"({wb_s / plain_s:.2f}x time, +{int(wb_q) - int(plain_q)} queries; "
            f"{billed} items recorded, {jobs} jobs, {int(body_bytes) / 1024:.0f} KiB "
            "of bodies)"
            f"\n    of which the write-back step: {float(hook_s):.2f} s, {hook_q} "
            f"queries ({int(hook_q) / int(invoices):.1f} per invoice, "
            f"{int(hook_q) / int(lines):.2f} per item)"
        )
        print(
            f"  callbacks: {done}/{jobs} jobs done in {send_s:.2f} s "
            f"({int(ok) / send_s:.1f} callbacks/s, {int(items) / send_s:,.0f} items/s, "
            f"{int(send_q) / max(int(ran), 1):.1f} queries per job); receiver: "
            f"{ok} verified, {bad} refused"
        )
        print(f"  (run took {time.monotonic() - began:.0f} s)")
        rows.append((int(lines), float(hook_s)))
    if len(rows) > 1:
        (small, small_s), (large, large_s) = rows[0], rows[-1]
        print(
            f"\nWrite-back step time per item, {large:,} vs {small:,}: "
            f"{(large_s / large) / (small_s / small):.2f}x (1.00 = linear)"
        )


if __name__ == "__main__":
    main()
