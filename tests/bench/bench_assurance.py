#!/usr/bin/env python3
"""Benchmark of revenue assurance: every check, service level and the fact
view measured on a database of 100,000 timesheet lines and 10,000 invoices.

    python3 tests/bench/bench_assurance.py --db qtc_as_bench --create
        [--lines 100000] [--invoices 10000] [--repeats 3]
    python3 tests/bench/bench_assurance.py --db qtc_as_bench   # measure again

``--create`` (re)creates the database with every QTC addon (no demo data)
and fills it: 150 confirmed orders and their projects through the ORM, one
template of each record through the ORM, then the volume by cloning those
templates in SQL (``INSERT ... SELECT`` over ``generate_series``), spread over
the last 90 days:

- ``--lines`` approved PSA time items, each with its timesheet line on an
  order line (70 % invoiced, the rest unbilled);
- ``--invoices`` customer invoices with their journal items (10 % draft, 3 %
  held by the tax engine, half of the posted ones paid through a
  reconciliation, linked to the order lines they bill);
- 2,000 Salesforce opportunity messages (a quarter without a confirmed
  order), 5,000 Stripe payment events (100 unapplied, with their exceptions)
  and the trail of the payments they created.

The measurement runs in one transaction rolled back at the end (the data
stays for the next run): each check alone, then all checks in one job call
(what the cron's job does), every service level, a full read of the
quote-to-cash fact view, the Prometheus lines and the dashboard's data.
The fastest of ``--repeats`` counts. Prints figures only, asserts nothing.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_base
from bench_base import env_vars, odoo_paths

ADDONS = "qtc_connector_base,qtc_salesforce,qtc_psa_timesheets,qtc_stripe,qtc_tax"

PRELUDE = """
import json, sys, time
import odoo
from odoo import api, fields, SUPERUSER_ID
odoo.tools.config.parse_config(["-d", sys.argv[1], "--addons-path", sys.argv[2],
                                "--log-level", "warn"])
registry = odoo.modules.registry.Registry(sys.argv[1])


def columns(cr, table):
    cr.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = %s AND column_name <> 'id' ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cr.fetchall()]


def clone(cr, table, template_id, source, overrides, where="true"):
    # One INSERT ... SELECT: every column copied from the template row, those
    # in ``overrides`` computed from the generating ``source``.
    names = columns(cr, table)
    select = [overrides.get(name, "t." + name) for name in names]
    cr.execute(
        "INSERT INTO " + table + " (" + ", ".join(names) + ") SELECT "
        + ", ".join(select) + " FROM " + table + " t, " + source
        + " WHERE t.id = " + str(int(template_id)) + " AND (" + where + ")"
        + " RETURNING id"
    )
    return [row[0] for row in cr.fetchall()]


def ints(values):
    return "'{" + ",".join(str(int(v)) for v in values) + "}'::int[]"
"""

CREATE_SCRIPT = (
    PRELUDE
    + """
lines, invoices = int(sys.argv[3]), int(sys.argv[4])
began = time.perf_counter()
with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    company = env.company
    hour = env.ref("uom.product_uom_hour")
    time_product = env["product.product"].create({
        "name": "Consulting (bench)", "type": "service",
        "invoice_policy": "delivery", "service_type": "timesheet",
        "service_tracking": "project_only", "list_price": 100.0,
        "uom_id": hour.id, "uom_po_id": hour.id, "taxes_id": [(6, 0, [])]})
    manual_product = env["product.product"].create({
        "name": "Advisory (bench)", "type": "service",
        "invoice_policy": "delivery", "service_type": "manual",
        "service_tracking": "project_only", "list_price": 1000.0,
        "taxes_id": [(6, 0, [])]})
    employees = env["hr.employee"].create(
        [{"name": f"Consultant {n}", "work_email": f"c{n}@bench.example.com"}
         for n in range(20)])
    customers = env["res.partner"].create(
        [{"name": f"Customer {n}"} for n in range(150)])
    orders = env["sale.order"].create([
        {"partner_id": c.id, "order_line": [(0, 0, {
            "product_id": (manual_product if n % 15 == 0 else time_product).id,
            "product_uom_qty": 100000})]}
        for n, c in enumerate(customers)])
    orders.action_confirm()
    time_lines = orders.order_line.filtered(lambda l: l.product_id == time_product)
    psa = env["qtc.backend"].create(
        {"name": "PSA (bench)", "provider": "psa_push", "state": "active"})
    salesforce = env["qtc.backend"].create(
        {"name": "Salesforce (bench)", "provider": "salesforce", "state": "active"})
    stripe = env["qtc.backend"].create(
        {"name": "Stripe (bench)", "provider": "stripe", "state": "active"})
    env["qtc.backend"].search([("provider", "in", ("avatax", "tax_rate_table"))]
                              ).write({"state": "disabled"})

    # Templates, through the ORM.
    first = time_lines[0]
    template_line = env["account.analytic.line"].create({
        "name": "Template", "project_id": first.project_id.id,
        "employee_id": employees[0].id, "unit_amount": 1.0, "so_line": first.id,
        "date": fields.Date.today()})
    template_item = env["qtc.psa.item"].create({
        "backend_id": psa.id, "external_id": "BENCH-TEMPLATE", "kind": "time",
        "status": "approved", "billable": True, "payload": "{}",
        "project_id": first.project_id.id, "analytic_line_id": template_line.id,
        "quantity": 1.0, "date": fields.Date.today()})
    invoice = env["account.move"].create({
        "move_type": "out_invoice", "partner_id": customers[0].id,
        "invoice_line_ids": [(0, 0, {"name": "Template", "price_unit": 1000.0,
                                     "tax_ids": [(6, 0, [])]})]})
    invoice.action_post()
    payment = env["account.payment.register"].with_context(
        active_model="account.move", active_ids=invoice.ids
    ).create({})._create_payments()
    partial = env["account.partial.reconcile"].search([], limit=1)
    template_exception = env["qtc.exception"].create(
        {"name": "Template", "category": "unapplied_cash"})
    env.flush_all()

    # Timesheets and their PSA items: 70 % invoiced (linked below).
    order_line_ids = time_lines.ids
    project_ids = time_lines.project_id.ids
    account_ids = [p.account_id.id for p in time_lines.project_id]
    line_ids = clone(cr, "account_analytic_line", template_line.id,
        f"generate_series(1, {lines}) g", {
            "name": "'Work ' || g",
            "so_line": f"({ints(order_line_ids)})[1 + mod(g, {len(order_line_ids)})]",
            "project_id": f"({ints(project_ids)})[1 + mod(g, {len(project_ids)})]",
            "account_id": f"({ints(account_ids)})[1 + mod(g, {len(account_ids)})]",
            "employee_id": f"({ints(employees.ids)})[1 + mod(g, 20)]",
            "unit_amount": "1 + mod(g, 8)",
            "date": "CURRENT_DATE - mod(g, 90)",
            "create_date": "now() at time zone 'utc' - mod(g, 90) * interval '1 day'",
            "timesheet_invoice_id": "NULL",
        })
    clone(cr, "qtc_psa_item", template_item.id,
        f"unnest({ints(line_ids)}) WITH ORDINALITY AS l(id, g)", {
            "external_id": "'BENCH-' || l.id",
            "analytic_line_id": "l.id",
            "billable": "mod(l.g, 10) <> 0",
            "quantity": "1 + mod(l.g, 8)",
            "date": "CURRENT_DATE - mod(l.g, 90)::int",
            "create_date": "now() at time zone 'utc' - mod(l.g, 90) * interval '1 day'",
            "write_date": "now() at time zone 'utc' - mod(l.g, 60) * interval '1 day'",
            "billed_state": "CASE WHEN mod(l.g, 10) < 7 THEN 'posted' END",
        })

    # Invoices: 10 % draft, 3 % held by the tax engine, half of the posted
    # ones paid; their journal items cloned with them.
    move_ids = clone(cr, "account_move", invoice.id,
        f"generate_series(1, {invoices}) g", {
            "name": "CASE WHEN mod(g, 10) = 0 THEN '/' ELSE 'BENCH/' || g END",
            "state": "CASE WHEN mod(g, 10) = 0 THEN 'draft' ELSE 'posted' END",
            "tax_state": "CASE WHEN mod(g, 10) = 0 AND mod(g, 30) = 0"
                         " THEN 'rejected' ELSE 'none' END",
            "payment_state": "CASE WHEN mod(g, 10) <> 0 AND mod(g, 2) = 1"
                             " THEN 'paid' ELSE 'not_paid' END",
            "amount_residual": "CASE WHEN mod(g, 2) = 1 THEN 0 ELSE 1000 END",
            "amount_residual_signed": "CASE WHEN mod(g, 2) = 1 THEN 0 ELSE 1000 END",
            "invoice_date": "CURRENT_DATE - mod(g, 90)",
            "date": "CURRENT_DATE - mod(g, 90)",
            "create_date": "now() at time zone 'utc' - mod(g, 90) * interval '1 day'",
            "partner_id": f"({ints(customers.ids)})[1 + mod(g, 150)]",
        })
    moves = ints(move_ids)
    for line in invoice.line_ids:
        new = clone(cr, "account_move_line", line.id,
            f"unnest({moves}) WITH ORDINALITY AS m(id, g)", {
                "move_id": "m.id",
                "move_name": "'BENCH/' || m.g",
                "parent_state": "CASE WHEN mod(m.g, 10) = 0 THEN 'draft'"
                                " ELSE 'posted' END",
                "date": "CURRENT_DATE - mod(m.g, 90)::int",
                "partner_id": f"({ints(customers.ids)})[1 + mod(m.g, 150)]",
            })
        if line.display_type == "payment_term":
            clone(cr, "account_partial_reconcile", partial.id,
                f"unnest({ints(new)}) WITH ORDINALITY AS p(id, g)", {
                    "debit_move_id": "p.id",
                    "full_reconcile_id": "NULL",
                    "create_date": "now() at time zone 'utc'"
                                   " - mod(p.g, 60) * interval '1 day'",
                }, where="mod(p.g, 10) <> 0 AND mod(p.g, 2) = 1")
        elif line.display_type == "product":
            order_ids = ints(time_lines.ids)
            cr.execute(
                "INSERT INTO sale_order_line_invoice_rel (invoice_line_id,"
                " order_line_id) SELECT l.id, (" + order_ids + ")[1 + mod(l.g,"
                f" {len(time_lines)})] FROM unnest({ints(new)}) WITH ORDINALITY"
                " AS l(id, g)")
    posted = [m for n, m in enumerate(move_ids, start=1) if n % 10]
    cr.execute(
        "UPDATE account_analytic_line SET timesheet_invoice_id = ("
        + ints(posted) + ")[1 + mod(id, " + str(len(posted)) + ")]"
        " WHERE id = ANY(" + ints(line_ids) + ") AND mod(id, 10) < 7")

    # Salesforce messages (a quarter without a confirmed order) and Stripe
    # payment events (100 unapplied), with bindings, exceptions and trail.
    cr.execute(
        "INSERT INTO qtc_event (backend_id, company_id, provider, external_id,"
        " event_type, payload, state, received_at, create_date, write_date)"
        " SELECT %s, %s, 'salesforce', 'sync:Opportunity:006B' || g,"
        " 'Opportunity.sync', json_build_object('Id', '006Bench' || lpad(g::text,"
        " 10, '0'), 'Amount', 1000 + g, 'CurrencyIsoCode', 'USD', 'IsWon',"
        " true)::text, 'done', now() at time zone 'utc' - mod(g, 90) *"
        " interval '1 day', now(), now() FROM generate_series(1, 2000) g",
        [salesforce.id, company.id])
    cr.execute(
        "INSERT INTO qtc_binding (backend_id, company_id, external_type,"
        " external_id, res_model, res_id, create_date, write_date)"
        " SELECT %s, %s, 'Opportunity', '006Bench' || lpad(g::text, 10, '0'),"
        " 'sale.order', (%s::int[])[1 + mod(g, 150)], now(), now()"
        " FROM generate_series(1, 1500) g",
        [salesforce.id, company.id, orders.ids])
    cr.execute(
        "INSERT INTO qtc_event (backend_id, company_id, provider, external_id,"
        " event_type, payload, state, received_at, create_date, write_date)"
        " SELECT %s, %s, 'stripe', 'evt_bench_' || g, 'payment_intent.succeeded',"
        " json_build_object('id', 'evt_bench_' || g, 'data', json_build_object("
        " 'object', json_build_object('id', 'pi_bench_' || g, 'amount_received',"
        " 10000 + g, 'currency', 'usd')))::text,"
        " CASE WHEN g <= 100 THEN 'failed' ELSE 'done' END,"
        " now() at time zone 'utc' - mod(g, 90) * interval '1 day', now(), now()"
        " FROM generate_series(1, 5000) g RETURNING id",
        [stripe.id, company.id])
    event_ids = sorted(row[0] for row in cr.fetchall())
    clone(cr, "qtc_exception", template_exception.id,
        f"unnest({ints(event_ids[:100])}) AS e(id)", {
            "event_id": "e.id", "backend_id": str(stripe.id), "state": "'open'"})
    cr.execute(
        "INSERT INTO qtc_trace (backend_id, event_id, res_model, res_id,"
        " operation, create_date, write_date) SELECT %s, e.id, 'account.payment',"
        " e.id, 'created', now() at time zone 'utc', now() at time zone 'utc'"
        " FROM unnest(%s::int[]) AS e(id)",
        [stripe.id, event_ids[100:]])
    cr.execute("ANALYZE")
    print(len(line_ids), len(move_ids), round(time.perf_counter() - began))
"""
)

MEASURE_SCRIPT = (
    PRELUDE
    + """
repeats = int(sys.argv[3])
from odoo.addons.qtc_connector_base.controllers.assurance_metrics import (
    assurance_metric_lines,
)


def timed(env, func):
    env.flush_all()
    env.invalidate_all()
    best = None
    for _n in range(repeats):
        env.cr.execute("SAVEPOINT bench")
        started = time.perf_counter()
        result = func()
        env.flush_all()
        elapsed = time.perf_counter() - started
        env.cr.execute("ROLLBACK TO SAVEPOINT bench")
        env.invalidate_all()
        best = elapsed if best is None else min(best, elapsed)
    return result, best


with registry.cursor() as cr:
    env = api.Environment(cr, SUPERUSER_ID, {})
    company = env.company
    checks = env["qtc.assurance.check"].search([("company_id", "=", company.id)])
    slas = env["qtc.flow.sla"].search([("company_id", "=", company.id)])
    cr.execute("SELECT count(*) FROM account_analytic_line")
    timesheets = cr.fetchone()[0]
    cr.execute("SELECT count(*) FROM account_move WHERE move_type = 'out_invoice'")
    invoice_count = cr.fetchone()[0]
    print("VOLUME", timesheets, invoice_count)
    for check in checks:
        def one(check=check):
            check._qtc_assurance_compute()
            return check.last_count, check.last_amount
        (count, amount), seconds = timed(env, one)
        print("CHECK", check.code, count, round(amount, 2), f"{seconds:.4f}")
    _result, seconds = timed(env, lambda: checks._qtc_assurance_compute())
    print("ALLCHECKS", len(checks), f"{seconds:.4f}")
    for sla in slas:
        def one(sla=sla):
            sla._qtc_sla_compute()
            return sla.last_count
        count, seconds = timed(env, one)
        print("SLA", sla.flow, count, f"{seconds:.4f}")
    _result, seconds = timed(env, lambda: slas._qtc_sla_compute())
    print("ALLSLAS", len(slas), f"{seconds:.4f}")

    def fact():
        cr.execute(
            "SELECT count(*), sum(won_amount), sum(outstanding_amount)"
            " FROM qtc_q2c_fact WHERE company_id = %s", [company.id])
        return cr.fetchone()
    (rows, won, outstanding), seconds = timed(env, fact)
    print("FACT", rows, f"{seconds:.4f}")
    checks._qtc_assurance_compute()
    slas._qtc_sla_compute()
    lines, seconds = timed(env, lambda: assurance_metric_lines(env))
    print("METRICS", len(lines), f"{seconds:.4f}")
    data, seconds = timed(
        env, lambda: env["qtc.assurance.dashboard"].qtc_dashboard_data())
    print("DASHBOARD", len(data["checks"]) + len(data["slas"]), f"{seconds:.4f}")
    cr.rollback()
"""
)


def run(script, *args):
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env_vars(),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=7200,
        check=False,
    )
    if out.returncode:
        sys.stderr.write(out.stderr[-6000:])
        raise RuntimeError("bench script failed")
    return out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--create", action="store_true")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.create:
        bench_base.create_db(args.db, ADDONS)
        print("filling it ...", flush=True)
        out = run(CREATE_SCRIPT, args.db, odoo_paths(), args.lines, args.invoices)
        lines, invoices, seconds = out.split()[-3:]
        print(
            f"  {int(lines):,} timesheet lines, {int(invoices):,} invoices "
            f"cloned in {seconds} s",
            flush=True,
        )
    began = time.monotonic()
    out = run(MEASURE_SCRIPT, args.db, odoo_paths(), args.repeats)
    total_checks = 0.0
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        kind = parts[0]
        if kind == "VOLUME":
            print(
                f"\n== {int(parts[1]):,} timesheet lines, {int(parts[2]):,} "
                "customer invoices (fastest of "
                f"{args.repeats} runs, each rolled back)"
            )
        elif kind == "CHECK":
            total_checks += float(parts[4])
            print(
                f"  check {parts[1]:<34} {int(parts[2]):>7,} items "
                f"{float(parts[3]):>16,.2f}  {float(parts[4]):.3f} s"
            )
        elif kind == "ALLCHECKS":
            print(
                f"  every check ({parts[1]}) in one job call: "
                f"{float(parts[2]):.2f} s (sum of the above "
                f"{total_checks:.2f} s)"
            )
        elif kind == "SLA":
            print(
                f"  service level {parts[1]:<26} {int(parts[2]):>7,} this week"
                f"  {float(parts[3]):.3f} s"
            )
        elif kind == "ALLSLAS":
            print(f"  every service level ({parts[1]}): {float(parts[2]):.2f} s")
        elif kind == "FACT":
            print(
                f"  quote-to-cash fact view, {int(parts[1]):,} engagements read "
                f"in full: {float(parts[2]):.3f} s"
            )
        elif kind == "METRICS":
            print(
                f"  /qtc/metrics assurance lines ({parts[1]}): "
                f"{float(parts[2]) * 1000:.1f} ms"
            )
        elif kind == "DASHBOARD":
            print(
                f"  dashboard data ({parts[1]} cards): {float(parts[2]) * 1000:.1f} ms"
            )
    print(f"  (measurement took {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
