#!/usr/bin/env python3
"""Revenue assurance on the demo database, after the demo engagement.

    python3 tests/e2e/demo.py --url http://localhost:8069 --db qtc_demo
    python3 tests/e2e/assurance_demo.py --url http://localhost:8069 --db qtc_demo \\
        [--screenshots docs/screenshots]

Over real HTTP, as the outside systems and a finance user would:

1. one planted leak: Stripe reports a payment of 1,250.00 USD (signed
   ``payment_intent.succeeded``) for an invoice number Odoo does not know, so
   it stays unapplied;
2. the PSA reports its approved items of the demo engagement's month to the
   signed reconciliation totals endpoint (they agree with Odoo);
3. a finance user runs the rate-table reconciliation of the last 30 days
   (Run a reconciliation) and measures every check and service level
   (Measure now, as on the dashboard);

then prints every card of the dashboard (what a finance user reads), and,
with ``--screenshots``, saves the dashboard and its click-throughs as PNGs
(headless Chromium).
"""

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from demo import OPPORTUNITY, PSA_BACKEND, PSA_SECRET, STRIPE_BACKEND, STRIPE_SECRET
from demo import TAX_BACKEND as TAX_BACKEND_XMLID
from harness import Rpc, wait_until

LEAK_AMOUNT_CENTS = 125000
LEAK_INVOICE = "INV/2099/99999"


def backend_id(rpc, xmlid):
    module, name = xmlid.split(".")
    rows = rpc.search_read(
        "ir.model.data", [("module", "=", module), ("name", "=", name)], ["res_id"]
    )
    if not rows:
        raise SystemExit(f"{xmlid} not found: is this the demo database?")
    return rows[0]["res_id"]


def plant_unapplied_payment(url, stripe_id):
    intent = {
        "id": "pi_qtcdemo_unapplied_1",
        "object": "payment_intent",
        "amount": LEAK_AMOUNT_CENTS,
        "amount_received": LEAK_AMOUNT_CENTS,
        "currency": "usd",
        "status": "succeeded",
        "customer": None,
        "latest_charge": "ch_qtcdemo_unapplied_1",
        "metadata": {"odoo_invoice": LEAK_INVOICE},
        "created": int(time.time()),
        "livemode": False,
        "canceled_at": None,
        "last_payment_error": None,
        "description": f"Invoice {LEAK_INVOICE}",
    }
    event = {
        "id": "evt_qtcdemo_unapplied_1",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "payment_intent.succeeded",
        "data": {"object": intent},
    }
    body = json.dumps(event).encode()
    response = requests.post(
        f"{url}/qtc/stripe/{stripe_id}/webhook",
        data=body,
        headers=harness.stripe_signed(body, STRIPE_SECRET),
        timeout=60,
    )
    print(f"Stripe payment for unknown invoice {LEAK_INVOICE}: {response.status_code}")
    return event["id"]


def report_psa_totals(rpc, url, psa_id):
    items = rpc.search_read(
        "qtc.psa.item",
        [
            ("backend_id", "=", psa_id),
            ("status", "=", "approved"),
            ("billable", "=", True),
        ],
        ["external_id", "kind", "date", "analytic_line_id", "quantity"],
    )
    if not items:
        return None
    lines = {
        line["id"]: line["unit_amount"]
        for line in rpc.search_read(
            "account.analytic.line",
            [
                (
                    "id",
                    "in",
                    [i["analytic_line_id"][0] for i in items if i["analytic_line_id"]],
                )
            ],
            ["unit_amount"],
        )
    }
    days = sorted(item["date"] for item in items)
    start = date.fromisoformat(days[0]).replace(day=1)
    end = max(date.fromisoformat(days[-1]), start)
    reported = []
    for item in items:
        entry = {
            "external_id": item["external_id"],
            "kind": item["kind"],
            "date": item["date"],
        }
        if item["kind"] == "time":
            entry["hours"] = str(lines.get(item["analytic_line_id"][0], 0))
        elif item["kind"] == "expense":
            continue  # the demo engagement has none
        reported.append(entry)
    body = json.dumps(
        {
            "period": {"from": start.isoformat(), "to": end.isoformat()},
            "items": reported,
        }
    ).encode()
    response = requests.post(
        f"{url}/qtc/psa/{psa_id}/reconciliation_totals",
        data=body,
        headers=harness.qtc_signed(body, PSA_SECRET),
        timeout=60,
    )
    print(
        f"PSA reconciliation totals ({len(reported)} items): {response.status_code} "
        f"{response.text[:120]}"
    )
    return response


def wait_for_jobs(rpc, timeout=240):
    """Wait for the queued work to be done (a job retrying with backoff, such
    as a scheduled Salesforce sweep with no stand-in to answer, is not)."""

    def idle():
        return not rpc(
            "qtc.job",
            "search_count",
            [("state", "in", ("pending", "started")), ("attempts", "=", 0)],
        )

    wait_until(idle, timeout, 1.0, "the job queue to drain")


def run_rate_table_reconciliation(rpc, tax_id):
    today = date.today()
    wizard = rpc(
        "qtc.reconciliation.wizard",
        "create",
        {
            "backend_id": tax_id,
            "kind": "tax_rate_table_committed",
            "date_from": (today - timedelta(days=30)).isoformat(),
            "date_to": today.isoformat(),
        },
    )
    rpc("qtc.reconciliation.wizard", "action_run", [wizard])


def print_cards(data):
    print("\nRevenue leaks")
    for card in data["checks"]:
        print(
            f"  {card['name']:<48} {card['count']:>4} items  {card['amount_text']:>14}"
            f"  oldest {card['oldest_text']:>9}  {card['state_label']}"
        )
    print("Service levels (this week)")
    for card in data["slas"]:
        print(
            f"  {card['name']:<48} {card['count']:>4} done"
            f"   median {card['p50_text']:>7}  p90 {card['p90_text']:>7}"
            f"  {card['target_text']}  {card['state_label']}"
        )
    print("Reconciliations")
    for card in data["reconciliations"]:
        print(
            f"  {card['name']:<48} {card['backend']}: {card['external_totals']} | "
            f"Odoo {card['odoo_totals']} | {card['differences']} difference(s)"
        )


def take_screenshots(url, db, login, password, folder):
    from screenshots import Browser

    folder = Path(folder)
    shots = []
    with Browser() as browser:
        browser.login(url, db, login, password)
        browser.open(
            f"{url}/odoo/action-qtc_connector_base.qtc_assurance_dashboard_action",
            ".o_qtc_assurance .o_qtc_card",
        )
        shots.append(browser.screenshot(folder / "assurance-dashboard.png", True))
        browser.click_card(
            "Payments received but unapplied", ".o_list_view .o_data_row"
        )
        shots.append(browser.screenshot(folder / "assurance-drilldown.png"))
        browser.open(
            f"{url}/odoo/action-qtc_connector_base.qtc_assurance_snapshot_action"
            "?view_type=pivot",
            ".o_pivot",
        )
        shots.append(browser.screenshot(folder / "assurance-history-pivot.png"))
        browser.open(
            f"{url}/odoo/action-qtc_connector_base.qtc_flow_sla_snapshot_action",
            ".o_pivot",
        )
        shots.append(browser.screenshot(folder / "assurance-lead-times.png"))
        browser.open(
            f"{url}/odoo/action-qtc_connector_base.qtc_reconciliation_run_action",
            ".o_list_view .o_data_row",
        )
        browser.click(".o_list_view .o_data_row .o_data_cell", ".o_form_view")
        shots.append(browser.screenshot(folder / "assurance-reconciliation.png", True))
        browser.open(
            f"{url}/odoo/action-qtc_assurance.qtc_q2c_fact_action",
            ".o_list_view .o_data_row",
        )
        shots.append(browser.screenshot(folder / "assurance-fact-view.png"))
    for shot in shots:
        print(f"  saved {shot}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://localhost:8069")
    parser.add_argument("--db", default="qtc_demo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--screenshots", help="folder for the PNG screenshots")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    rpc = Rpc(url, args.db, args.login, args.password)
    if not rpc.search_read(
        "qtc.binding",
        [("external_type", "=", "Opportunity"), ("external_id", "=", OPPORTUNITY)],
        ["res_id"],
    ):
        print("Play the demo engagement first: tests/e2e/demo.py", file=sys.stderr)
        return 1
    stripe_id = backend_id(rpc, STRIPE_BACKEND)
    psa_id = backend_id(rpc, PSA_BACKEND)
    tax_id = backend_id(rpc, TAX_BACKEND_XMLID)
    plant_unapplied_payment(url, stripe_id)
    report_psa_totals(rpc, url, psa_id)
    wait_for_jobs(rpc)
    run_rate_table_reconciliation(rpc, tax_id)
    wait_for_jobs(rpc)
    rpc("qtc.assurance.dashboard", "qtc_dashboard_measure")
    data = rpc("qtc.assurance.dashboard", "qtc_dashboard_data")
    print_cards(data)
    if args.screenshots:
        take_screenshots(url, args.db, args.login, args.password, args.screenshots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
