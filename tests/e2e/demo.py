#!/usr/bin/env python3
"""Play one engagement end to end against a running Odoo with the QTC demo data.

    python3 tests/e2e/demo.py --url http://localhost:8069 --db qtc_demo
                              [--login admin --password admin]
                              [--standin-port 8443] [--timeout 180]

Every step goes over real HTTP, as the outside systems and a user would:

1. Salesforce: an Outbound Message for a won opportunity is POSTed to the
   connector's endpoint; the connector reads the full opportunity from the
   Salesforce REST API, served here by a loopback stand-in
   (``harness.SalesforceStandIn``, HTTPS on 127.0.0.1) -> customer, confirmed
   order, project.
2. PSA: a signed batch of approved time and a milestone completion is pushed
   -> timesheets on the project and the milestone's delivered quantity.
3. Invoicing, as a user through JSON-RPC: Odoo's standard "Create invoice"
   (delivered quantities) on the order, then "Confirm" the invoice: the
   rate-table tax engine quotes its taxes and commits the invoice.
4. Stripe: a signed ``payment_intent.succeeded`` for the invoice's total ->
   payment posted and reconciled, invoice paid.

It then prints the trace of every event (``qtc.trace`` and ``qtc.job`` by
correlation id) and the final state. A second run sends the same messages:
they are acknowledged as duplicates and the driver checks (and prints) that
nothing changed; it exits non-zero when something did.

Set-up the driver does through JSON-RPC when needed (idempotent): the demo
backends' secrets (the demo data ships none; the driver's own demo values
below, only where none is set yet), the Salesforce backend pointed at the
stand-in, two products, one consultant and the PSA value maps.

The Odoo server must trust the stand-in's certificate authority: start it
with ``REQUESTS_CA_BUNDLE`` set to the bundle ``python3 tests/e2e/harness.py
ca-bundle`` prints (``.qtc/standin/ca-bundle.pem``: the bundle the environment
had configured, the public roots and the stand-in's CA; ``bash docker/run.sh``
does so in local mode). It must also allow the stand-in as an outbound
destination (connector requests go only to the providers' own hosts, and never
to the loopback, unless the server configuration says otherwise):
``QTC_ALLOWED_HOSTS=127.0.0.1:8443`` in its environment, or
``qtc_allowed_hosts`` in its configuration file (``bash docker/run.sh`` sets it
for ``QTC_STANDIN_PORT``, 8443 by default).

While it waits, the driver prints the last error of any job that is retrying,
and stops at once with that error when waiting cannot help: an SSL certificate
or authentication failure, a job failed on a business error, a dead job.
"""

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import Rpc, wait_until

# Demo secrets known to this driver: set on the demo backends when they have
# none (a backend that has another secret keeps it; the driver then says so).
PSA_SECRET = "qtc-demo-psa-secret-0b1c2d3e4f5a6b7c"
STRIPE_SECRET = "whsec_qtc_demo_0123456789abcdef"
SF_OUTBOUND_TOKEN = "qtc-demo-outbound-token-5f4e3d2c1b0a99887766"
SF_CLIENT_SECRET = "qtc-demo-consumer-secret"

SF_BACKEND = "qtc_salesforce.qtc_backend_salesforce_demo"
PSA_BACKEND = "qtc_psa_timesheets.qtc_backend_psa_demo"
STRIPE_BACKEND = "qtc_stripe.qtc_backend_stripe_demo"
TAX_BACKEND = "qtc_tax.qtc_backend_demo_tax_rate_table"

CONSULT_CODE = "QTC-DEMO-CONSULT"
GOLIVE_CODE = "QTC-DEMO-GOLIVE"
CONSULTANT_EMAIL = "dana.consultant@qtc-demo.example.com"
FINISHED = ("done", "failed", "ignored", "dead")
JOB_FINISHED = ("done", "failed", "dead", "cancelled")


class DemoError(Exception):
    pass


class Demo:
    """The demo backends of one database and what the driver sends them."""

    def __init__(self, rpc, standin, timeout=180, out=print):
        self.rpc = rpc
        self.standin = standin
        self.timeout = timeout
        self.out = out
        self.sent = []  # (backend id, event external id, HTTP status)
        self.watch = harness.JobWatch(rpc, out)
        self.sf = rpc.ref(SF_BACKEND)
        self.psa = rpc.ref(PSA_BACKEND)
        self.stripe = rpc.ref(STRIPE_BACKEND)
        self.tax = rpc.ref(TAX_BACKEND)
        self.org_id = rpc("qtc.backend", "read", [self.sf], ["salesforce_org_id"])[0][
            "salesforce_org_id"
        ]

    # ------------------------------------------------------------- set-up

    def _secret_set(self, backend_id, label):
        summary = self.rpc("qtc.backend", "read", [backend_id], ["secrets_summary"])[0][
            "secrets_summary"
        ]
        return f"{label}: set" in (summary or "")

    def configure(self):
        """Secrets, stand-in URL, products, consultant (each only if missing).

        :returns: the list of what was changed
        """
        rpc = self.rpc
        changed = []
        for backend_id, field, label, value in (
            (self.psa, "webhook_secret", "Webhook signing secret", PSA_SECRET),
            (self.stripe, "webhook_secret", "Webhook signing secret", STRIPE_SECRET),
            (
                self.sf,
                "salesforce_outbound_token",
                "Outbound Message token",
                SF_OUTBOUND_TOKEN,
            ),
            (self.sf, "salesforce_client_secret", "Consumer secret", SF_CLIENT_SECRET),
        ):
            if not self._secret_set(backend_id, label):
                rpc("qtc.backend", "write", [backend_id], {field: value})
                changed.append(f"{label} of backend {backend_id}")
        sf_values = {
            "salesforce_instance_url": self.standin.instance_url,
            "salesforce_auth_flow": "client_credentials",
        }
        current = rpc("qtc.backend", "read", [self.sf], list(sf_values))[0]
        if any(current[k] != v for k, v in sf_values.items()):
            try:
                rpc("qtc.backend", "write", [self.sf], sf_values)
            except harness.RpcError as exc:
                if "qtc_allowed_hosts" not in str(exc):
                    raise
                raise DemoError(
                    f"Odoo refuses the stand-in {self.standin.instance_url} as "
                    "the Salesforce instance: start it with QTC_ALLOWED_HOSTS="
                    f"{urlsplit(self.standin.instance_url).netloc} (bash "
                    "docker/run.sh does, for QTC_STANDIN_PORT)"
                ) from None
            changed.append(f"Salesforce instance URL -> {self.standin.instance_url}")
        for code, values in (
            (
                CONSULT_CODE,
                {
                    "name": "Consulting hours (QTC demo)",
                    "type": "service",
                    "invoice_policy": "delivery",
                    "service_type": "timesheet",
                    "service_tracking": "project_only",
                    "list_price": 150.0,
                    "uom_id": rpc.ref("uom.product_uom_hour"),
                    "uom_po_id": rpc.ref("uom.product_uom_hour"),
                },
            ),
            (
                GOLIVE_CODE,
                {
                    "name": "Go-live milestone (QTC demo)",
                    "type": "service",
                    "invoice_policy": "delivery",
                    "service_type": "manual",
                    "service_tracking": "no",
                    "list_price": 4000.0,
                },
            ),
        ):
            if not rpc("product.product", "search", [("default_code", "=", code)]):
                rpc("product.product", "create", {**values, "default_code": code})
                changed.append(f"product {code}")
        if not rpc("hr.employee", "search", [("work_email", "=", CONSULTANT_EMAIL)]):
            rpc(
                "hr.employee",
                "create",
                {"name": "Dana Consultant (QTC demo)", "work_email": CONSULTANT_EMAIL},
            )
            changed.append(f"employee {CONSULTANT_EMAIL}")
        return changed

    def map_value(self, map_xmlid, external_value, res_id):
        """Add ``external_value -> res_id`` to a value map unless there."""
        map_id = self.rpc.ref(map_xmlid)
        found = self.rpc.search_read(
            "qtc.value.map.line",
            [("map_id", "=", map_id), ("external_value", "=", external_value)],
            ["res_id"],
        )
        if found:
            return False
        self.rpc(
            "qtc.value.map.line",
            "create",
            {"map_id": map_id, "external_value": external_value, "res_id": res_id},
        )
        return True

    # ------------------------------------------------------------ senders

    def post(self, path, body, headers, backend_id, keys, timeout=60):
        response = requests.post(
            f"{self.rpc.url}{path}", data=body, headers=headers, timeout=timeout
        )
        for key in keys:
            self.sent.append((backend_id, key, response.status_code))
        return response

    def send_opportunity(self, notification_id, record):
        self.standin.add(record)
        body = harness.outbound_message(
            self.org_id, [(notification_id, record)], self.standin.instance_url
        )
        response = self.post(
            f"/qtc/salesforce/{self.sf}/outbound/{SF_OUTBOUND_TOKEN}",
            body,
            {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            self.sf,
            [notification_id],
        )
        if response.status_code != 200 or b"<Ack>true</Ack>" not in response.content:
            raise DemoError(
                f"Salesforce outbound message answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        return response

    def push_work_items(self, items):
        body = json.dumps({"items": items}).encode()
        keys = [f"{item['external_id']}:{item['version']}" for item in items]
        response = self.post(
            f"/qtc/psa/{self.psa}/work_items",
            body,
            harness.qtc_signed(body, PSA_SECRET),
            self.psa,
            keys,
        )
        if response.status_code != 200:
            raise DemoError(
                f"PSA push answered {response.status_code}: {response.text[:300]}"
            )
        statuses = [item["status"] for item in response.json()["items"]]
        if "rejected" in statuses:
            raise DemoError(f"PSA push rejected items: {response.text[:500]}")
        return statuses

    def send_stripe(self, event):
        body = json.dumps(event).encode()
        response = self.post(
            f"/qtc/stripe/{self.stripe}/webhook",
            body,
            harness.stripe_signed(body, STRIPE_SECRET),
            self.stripe,
            [event["id"]],
        )
        if response.status_code != 200:
            raise DemoError(
                f"Stripe webhook answered {response.status_code}: {response.text[:300]}"
            )
        return response

    # ------------------------------------------------------------ waiting

    def events(self, backend_id, keys, fields=("state", "correlation_id")):
        return self.rpc.search_read(
            "qtc.event",
            [("backend_id", "=", backend_id), ("external_id", "in", list(keys))],
            ["external_id", *fields],
        )

    def settle(self, backend_id, keys):
        """Wait until the events ``keys`` of a backend and every job of their
        correlation ids have finished; raise when one needs attention."""

        def finished():
            events = self.events(backend_id, keys, ("state", "correlation_id"))
            # Say what a retrying job goes through; stop on a permanent cause.
            self.watch.check(
                [("correlation_id", "in", [e["correlation_id"] for e in events])]
            )
            if len(events) < len(set(keys)) or any(
                e["state"] not in FINISHED for e in events
            ):
                return None
            correlation_ids = [e["correlation_id"] for e in events]
            running = self.rpc(
                "qtc.job",
                "search_count",
                [
                    ("correlation_id", "in", correlation_ids),
                    ("state", "not in", JOB_FINISHED),
                ],
            )
            return None if running else events

        events = self.wait(finished, f"events {sorted(keys)}")
        bad = [e for e in events if e["state"] != "done"]
        if bad:
            details = self.rpc.search_read(
                "qtc.event",
                [("id", "in", [e["id"] for e in bad])],
                ["external_id", "state", "error_message"],
            )
            raise DemoError(f"events did not apply: {details}")
        return events

    def order_of(self, opportunity_id):
        bindings = self.rpc.search_read(
            "qtc.binding",
            [
                ("backend_id", "=", self.sf),
                ("external_type", "=", "Opportunity"),
                ("external_id", "=", opportunity_id),
            ],
            ["res_id"],
        )
        return bindings[0]["res_id"] if bindings else None

    def wait_jobs(self, domain, what):
        def finished():
            self.watch.check(domain)
            return not self.rpc(
                "qtc.job",
                "search_count",
                [*domain, ("state", "in", ("pending", "started"))],
            )

        self.wait(finished, what)

    def wait(self, predicate, what):
        """``wait_until`` with the driver's timeout; a timeout names the last
        error of a retrying job, if any.

        :raises harness.JobFailure: a job failed for a cause waiting won't fix
        """
        try:
            return wait_until(predicate, self.timeout, 1.0, what)
        except TimeoutError as exc:
            if self.watch.last_error:
                raise DemoError(
                    f"{exc}; last error of a retrying {self.watch.last_error}"
                ) from None
            raise


# ------------------------------------------------------------- the engagement

OPPORTUNITY = "006QTCDEMO0000001A"
ACCOUNT = "001QTCDEMO0000001A"
NOTIFICATION = "04lQTCDEMO0000001A"
PROJECT_REF = "QTC-DEMO-ENGAGEMENT"
MILESTONE_REF = "QTC-DEMO-GOLIVE"


def engagement_record():
    return harness.opportunity_record(
        OPPORTUNITY,
        ACCOUNT,
        "Northwind rollout (QTC demo)",
        "Northwind Traders (QTC demo)",
        [
            ("00kQTCDEMO0000001A", CONSULT_CODE, 40, 150.0, "Time"),
            ("00kQTCDEMO0000002A", GOLIVE_CODE, 1, 4000.0, "Fixed"),
        ],
        "2026-11-02T10:00:00",
    )


def work_items():
    approved = "2026-11-06T17:00:00Z"
    common = {
        "project_ref": PROJECT_REF,
        "status": "approved",
        "approved_at": approved,
        "approver": "lead@qtc-demo.example.com",
        "version": 1,
    }
    return [
        {
            **common,
            "external_id": "QTC-DEMO-TE-1",
            "kind": "time",
            "employee_email": CONSULTANT_EMAIL,
            "date": "2026-11-03",
            "hours": "7.50",
            "rate": "150.00",
            "description": "Discovery workshop",
        },
        {
            **common,
            "external_id": "QTC-DEMO-TE-2",
            "kind": "time",
            "employee_email": CONSULTANT_EMAIL,
            "date": "2026-11-04",
            "hours": "6.00",
            "rate": "150.00",
            "description": "Data migration",
        },
        {
            **common,
            "external_id": "QTC-DEMO-MS-1",
            "kind": "milestone",
            "milestone_ref": MILESTONE_REF,
            "date": "2026-11-05",
            "description": "Go-live signed off",
        },
    ]


def stripe_event(invoice):
    cents = round(invoice["amount_total"] * 100)
    number = invoice["name"].replace("/", "-")
    intent = {
        "id": f"pi_qtcdemo_{number}",
        "object": "payment_intent",
        "amount": cents,
        "amount_received": cents,
        "currency": "usd",
        "status": "succeeded",
        "customer": None,
        "latest_charge": f"ch_qtcdemo_{number}",
        "metadata": {"odoo_invoice": invoice["name"]},
        "created": 1794000000,
        "livemode": False,
        "canceled_at": None,
        "last_payment_error": None,
        "description": f"Invoice {invoice['name']}",
    }
    return {
        "id": f"evt_qtcdemo_{number}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1794000000,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "payment_intent.succeeded",
        "data": {"object": intent},
    }


def play(demo):
    """Run the engagement; return a dict of the records it reached."""
    rpc, out = demo.rpc, demo.out
    out("1. Salesforce: outbound message for won opportunity", OPPORTUNITY)
    demo.send_opportunity(NOTIFICATION, engagement_record())
    demo.settle(demo.sf, [NOTIFICATION])
    order_id = demo.order_of(OPPORTUNITY)
    if not order_id:
        raise DemoError("the opportunity produced no sale order")
    order = rpc(
        "sale.order",
        "read",
        [order_id],
        ["name", "state", "partner_id", "order_line", "project_ids"],
    )[0]
    if order["state"] != "sale":
        raise DemoError(f"order {order['name']} is {order['state']}, not confirmed")
    lines = rpc(
        "sale.order.line",
        "read",
        order["order_line"],
        ["product_id", "project_id", "qty_delivered_method"],
    )
    project_id = next(line["project_id"][0] for line in lines if line["project_id"])
    golive_line = next(
        line["id"] for line in lines if line["qty_delivered_method"] == "manual"
    )
    out(
        f"   -> customer {order['partner_id'][1]}, order {order['name']}, "
        f"project id {project_id}"
    )

    out("2. PSA: approved time and a milestone, signed push")
    demo.map_value(
        "qtc_psa_timesheets.qtc_value_map_psa_project", PROJECT_REF, project_id
    )
    demo.map_value(
        "qtc_psa_timesheets.qtc_value_map_psa_milestone", MILESTONE_REF, golive_line
    )
    items = work_items()
    statuses = demo.push_work_items(items)
    out(f"   -> answered {statuses}")
    demo.settle(demo.psa, [f"{i['external_id']}:{i['version']}" for i in items])

    out("3. Invoicing: Create invoice (delivered) on the order, then Confirm")
    invoice_ids = rpc("sale.order", "read", [order_id], ["invoice_ids"])[0][
        "invoice_ids"
    ]
    status = rpc("sale.order", "read", [order_id], ["invoice_status"])[0][
        "invoice_status"
    ]
    if status == "to invoice":
        wizard = rpc(
            "sale.advance.payment.inv",
            "create",
            {
                "advance_payment_method": "delivered",
                "sale_order_ids": [(6, 0, [order_id])],
            },
        )
        rpc("sale.advance.payment.inv", "create_invoices", [wizard])
        invoice_ids = rpc("sale.order", "read", [order_id], ["invoice_ids"])[0][
            "invoice_ids"
        ]
        out(f"   -> invoice created (order was '{status}')")
    else:
        out(f"   -> nothing to invoice (order is '{status}')")
    if not invoice_ids:
        raise DemoError("the order has no invoice")
    invoice_id = invoice_ids[0]
    if rpc("account.move", "read", [invoice_id], ["state"])[0]["state"] == "draft":
        rpc("account.move", "action_post", [invoice_id])
        out("   -> invoice confirmed")
    demo.wait_jobs(
        [("identity_key", "like", f"qtc_tax:%:{invoice_id}")], "the tax commit job"
    )
    invoice = rpc(
        "account.move",
        "read",
        [invoice_id],
        ["name", "state", "amount_total", "payment_state"],
    )[0]
    if invoice["state"] != "posted":
        raise DemoError(f"invoice is {invoice['state']} (taxes pending?)")

    out(
        f"4. Stripe: payment_intent.succeeded for {invoice['name']} "
        f"({invoice['amount_total']:.2f})"
    )
    event = stripe_event(invoice)
    demo.send_stripe(event)
    demo.settle(demo.stripe, [event["id"]])
    return {"order": order_id, "project": project_id, "invoice": invoice_id}


# ------------------------------------------------------------- trace & state


def print_trace(demo):
    rpc, out = demo.rpc, demo.out
    out("\nTrace (by correlation id)")
    seen = set()
    for backend_id, key, _status in demo.sent:
        if (backend_id, key) in seen:
            continue
        seen.add((backend_id, key))
        for event in demo.events(
            backend_id, [key], ("state", "correlation_id", "event_type", "result")
        ):
            cid = event["correlation_id"]
            out(
                f"  event {event['event_type']} {key} [{event['state']}] "
                f"correlation {cid}: {event['result'] or ''}"
            )
            for job in rpc.search_read(
                "qtc.job",
                [("correlation_id", "=", cid)],
                ["name", "state", "attempts", "result"],
                order="id",
            ):
                out(
                    f"    job {job['name']} [{job['state']}, attempts "
                    f"{job['attempts']}] {(job['result'] or '')[:80]}"
                )
            for trace in rpc.search_read(
                "qtc.trace",
                [("correlation_id", "=", cid)],
                ["res_model", "res_id", "res_name", "operation", "note"],
                order="id",
            ):
                out(
                    f"    {trace['operation']:<8} {trace['res_model']} "
                    f"{trace['res_id']} {trace['res_name'] or ''} "
                    f"{trace['note'] or ''}".rstrip()
                )


def snapshot(demo, reached):
    """The business state the engagement touches, as comparable values."""
    rpc = demo.rpc
    order = rpc(
        "sale.order",
        "read",
        [reached["order"]],
        ["name", "state", "partner_id", "amount_total", "invoice_status", "order_line"],
    )[0]
    partner_id = order["partner_id"][0]
    lines = rpc(
        "sale.order.line",
        "read",
        order["order_line"],
        ["name", "product_uom_qty", "qty_delivered", "qty_invoiced", "price_unit"],
    )
    timesheets = rpc.search_read(
        "account.analytic.line",
        [("project_id", "=", reached["project"])],
        ["date", "unit_amount", "name"],
        order="id",
    )
    invoices = rpc.search_read(
        "account.move",
        [("partner_id", "=", partner_id), ("move_type", "=", "out_invoice")],
        [
            "name",
            "state",
            "amount_untaxed",
            "amount_tax",
            "amount_total",
            "payment_state",
            "tax_state",
        ],
        order="id",
    )
    payments = rpc.search_read(
        "account.payment",
        [("partner_id", "=", partner_id)],
        ["name", "amount", "state"],
        order="id",
    )
    events = {
        backend: rpc("qtc.event", "search_count", [("backend_id", "=", backend)])
        for backend in (demo.sf, demo.psa, demo.stripe)
    }
    partners = rpc(
        "res.partner", "search_count", [("name", "=", order["partner_id"][1])]
    )
    return {
        "partners named like the customer": partners,
        "order": {
            k: order[k] for k in ("name", "state", "amount_total", "invoice_status")
        },
        "order lines": [
            {
                k: line[k]
                for k in ("name", "product_uom_qty", "qty_delivered", "qty_invoiced")
            }
            for line in lines
        ],
        "timesheets": [(t["date"], t["unit_amount"], t["name"]) for t in timesheets],
        "invoices": [
            {
                k: i[k]
                for k in (
                    "name",
                    "state",
                    "amount_untaxed",
                    "amount_tax",
                    "amount_total",
                    "payment_state",
                    "tax_state",
                )
            }
            for i in invoices
        ],
        "payments": [(p["name"], p["amount"], p["state"]) for p in payments],
        "events stored per backend": events,
    }


def print_state(demo, state, reached):
    out = demo.out
    out("\nFinal state")
    order = state["order"]
    out(
        f"  order {order['name']}: {order['state']}, "
        f"total {order['amount_total']:.2f}, invoice status {order['invoice_status']}"
    )
    for line in state["order lines"]:
        out(
            f"    {line['name'][:45]:<45} ordered {line['product_uom_qty']:g} "
            f"delivered {line['qty_delivered']:g} invoiced {line['qty_invoiced']:g}"
        )
    out(
        f"  project id {reached['project']}: "
        f"{len(state['timesheets'])} timesheet line(s), "
        f"{sum(t[1] for t in state['timesheets']):g} h"
    )
    for invoice in state["invoices"]:
        out(
            f"  invoice {invoice['name']}: {invoice['state']}, untaxed "
            f"{invoice['amount_untaxed']:.2f} + tax {invoice['amount_tax']:.2f} = "
            f"{invoice['amount_total']:.2f}, {invoice['payment_state']}"
        )
    tax = demo.rpc(
        "account.move",
        "read",
        [reached["invoice"]],
        ["tax_backend_id", "tax_state", "tax_engine_total", "tax_document_code"],
    )[0]
    out(
        f"  tax engine {tax['tax_backend_id'] and tax['tax_backend_id'][1]}: "
        f"{tax['tax_state']}, engine tax {tax['tax_engine_total']:.2f}, "
        f"committed as {tax['tax_document_code']}"
    )
    for payment in state["payments"]:
        out(f"  payment {payment[0]}: {payment[1]:.2f} {payment[2]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://localhost:8069")
    parser.add_argument("--db", default="qtc_demo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--standin-port", type=int, default=8443)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    # The stand-in's files only: the bundle Odoo trusts is docker/run.sh's.
    tls = harness.make_tls_files(bundle=False)
    rpc = Rpc(args.url, args.db, args.login, args.password)
    with harness.SalesforceStandIn(args.standin_port, tls, "") as standin:
        demo = Demo(rpc, standin, args.timeout)
        standin.org_id = demo.org_id
        changed = demo.configure()
        if changed:
            print("Set up:", "; ".join(changed))
        before = None
        order_id = demo.order_of(OPPORTUNITY)
        try:
            if order_id:
                # An earlier run: remember the state to prove nothing changes.
                before = snapshot(demo, reached_of(demo, order_id))
            reached = play(demo)
        except (DemoError, TimeoutError, harness.JobFailure) as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            return 1
        after = snapshot(demo, reached)
        print_trace(demo)
        print_state(demo, after, reached)
    statuses = [status for _b, _k, status in demo.sent]
    print(f"\nHTTP answers: {statuses}")
    if before is None:
        print("First run: the engagement was created. Run again: nothing will change.")
        return 0
    if before == after:
        print(
            "Second run: every message was a duplicate and nothing changed "
            "(state compared before and after: identical)."
        )
        return 0
    print("Second run CHANGED the state:", file=sys.stderr)
    for key in after:
        if before.get(key) != after.get(key):
            print(f"  {key}: {before.get(key)} -> {after.get(key)}", file=sys.stderr)
    return 1


def reached_of(demo, order_id):
    order = demo.rpc("sale.order", "read", [order_id], ["order_line", "invoice_ids"])[0]
    lines = demo.rpc("sale.order.line", "read", order["order_line"], ["project_id"])
    project_id = next(
        (line["project_id"][0] for line in lines if line["project_id"]), 0
    )
    return {
        "order": order_id,
        "project": project_id,
        "invoice": (order["invoice_ids"] or [0])[0],
    }


if __name__ == "__main__":
    sys.exit(main())
