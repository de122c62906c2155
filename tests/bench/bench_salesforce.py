#!/usr/bin/env python3
"""Benchmark of the Salesforce delta sync against a mocked API, in one run.

    python3 tests/bench/bench_salesforce.py [--sizes 1000] [--large]
                                            [--db qtc_bench_sf] [--recreate-db]
                                            [--no-update]

For each size N, a fake org of N accounts and N won opportunities (3 line items
each) is served by ``responses`` exactly as the REST query resource pages it
(``totalSize``/``done``/``nextRecordsUrl``, ``attributes`` on every record,
2,000 records a page, the account and the ``OpportunityLineItems`` subquery
inside each opportunity), the token endpoint and sObject Collections are
mocked too, and no request leaves the process. The sync then runs the way
production runs it: "Sync now" queues the sweep, and the base's job runner
(``qtc.job._qtc_run_worker``, one transaction per job, on real cursors) works
through the page jobs, the event jobs they queue (apply, with order
confirmation when the backend says so) and the write-back jobs confirmation
queues, until no job is ready.

Printed per size:

- accounts + opportunities synced per second (wall time of the worker loop,
  write-back included), with the time spent in each kind of job;
- the baseline: plain ORM creation of the same N partners and N sale orders
  with 3 lines each (batched ``create``, then ``action_confirm`` when the
  backend confirms), and the ratio of the two rates;
- the API calls per endpoint, against what the daily org allocation allows:
  reads at one call per 2,000 records, writes at most one call per 200
  records written;
- SQL queries per opportunity (``odoo.sql_db.sql_counter``);
- the jobs that needed a second attempt (a retried write-back sends its
  records again). Jobs waiting for a retry (or any other delay) when the
  worker runs dry are then run at once, so the figures cover the whole sync.

The database (default ``qtc_bench_sf``) is created once with ``qtc_salesforce``
and no demo data, and kept (its QTC modules are updated at the start of a
run, unless ``--no-update``): each run adds a new backend and new records, so
runs do not see each other's bindings. Everything is timed on this machine
with whatever else runs on it; compare figures of one run, not across runs.
"""

import argparse
import json
import math
import os
import random
import re
import string
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
KEY = "YmVuY2gta2V5LWZvci1xdGMtYmVuY2htYXJrcy0wMDA="
os.environ.setdefault("QTC_ENCRYPTION_KEY", KEY)
os.environ["TZ"] = "UTC"

INSTANCE = "https://bench.my.salesforce.com"
TOKEN_URL = "https://test.salesforce.com/services/oauth2/token"
API_VERSION = "v61.0"
API = f"{INSTANCE}/services/data/{API_VERSION}"
COLLECTIONS_URL = f"{API}/composite/sobjects"
ORG_ID = "00D5e000000BNCHEAG"
PAGE_SIZE = 2000  # the REST query resource's largest batch
COLLECTION_SIZE = 200  # records per sObject Collections call
# (code, name, product values, Billing_Type__c on the line item)
PRODUCTS = (
    ("BENCH-IMPL", "Bench implementation", {"type": "service"}, "Fixed Price"),
    (
        "BENCH-HR",
        "Bench consulting hours",
        {"type": "service", "invoice_policy": "delivery", "service_type": "manual"},
        "Time & Materials",
    ),
    ("BENCH-LIC", "Bench licence", {"type": "consu"}, "Fixed"),
)
BASE_TIME = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)


def odoo_paths():
    import odoo

    package = Path(odoo.__file__).parent
    paths = [package / "addons"]
    if (package.parent / "addons").is_dir():
        paths.append(package.parent / "addons")
    paths.append(ROOT / "addons")
    return ",".join(str(p) for p in paths)


def database_exists(db):
    with psycopg2.connect(dbname="postgres") as conn, conn.cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
        return bool(cr.fetchone())


def ensure_database(db, recreate, update):
    """Create ``db`` with qtc_salesforce and no demo data, unless it exists;
    with ``update``, bring an existing one's QTC modules up to the code."""
    env = {**os.environ, "TZ": "UTC"}
    if recreate and database_exists(db):
        subprocess.run(
            [sys.executable, "-m", "odoo", "db", "drop", db],
            env=env,
            cwd="/",
            capture_output=True,
            check=False,
        )
    exists = database_exists(db)
    if exists and not update:
        return
    print(
        f"updating the QTC modules of {db} ..."
        if exists
        else f"creating database {db} (qtc_salesforce, no demo) ...",
        flush=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "odoo",
            "-d",
            db,
            "--addons-path",
            odoo_paths(),
            # -u of the base updates every QTC module that depends on it.
            *(("-u", "qtc_connector_base") if exists else ("-i", "qtc_salesforce")),
            "--without-demo=all",
            "--stop-after-init",
            "--max-cron-threads",
            "0",
            "--log-level",
            "warn",
        ],
        env=env,
        cwd="/",
        check=True,
    )


# ------------------------------------------------------------------ fake org


def _stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class FakeOrg:
    """N accounts and N won opportunities, served page by page as Salesforce
    serves query results. Record ids carry ``tag`` so every run is new."""

    def __init__(self, size, tag):
        self.size = size
        self.tag = tag  # 3 alphanumeric characters

    def _id(self, prefix, number):
        return f"{prefix}{self.tag}{number:09d}AAA"

    def account_id(self, number):
        return self._id("001", number)

    def account(self, number, embedded=False):
        moment = BASE_TIME + timedelta(seconds=number)
        record = {
            "attributes": {
                "type": "Account",
                "url": f"/services/data/{API_VERSION}/sobjects/Account/"
                f"{self.account_id(number)}",
            },
            "Id": self.account_id(number),
            "Name": f"Bench customer {self.tag}-{number}",
            "BillingStreet": f"{number} Market Street\nSuite {number % 90 + 10}",
            "BillingCity": "San Francisco",
            "BillingPostalCode": "94105",
            "BillingStateCode": "CA",
            "BillingCountryCode": "US",
            "Phone": f"+1 415 555 {number % 10000:04d}",
            "Website": f"https://customer{number}.example.com",
            "CurrencyIsoCode": "USD",
            "SystemModstamp": _stamp(moment),
        }
        if not embedded:
            record["LastModifiedDate"] = _stamp(moment)
        return record

    def opportunity(self, number):
        moment = BASE_TIME + timedelta(days=30, seconds=number)
        opportunity_id = self._id("006", number)
        lines = []
        for position, (code, _name, _values, billing_type) in enumerate(PRODUCTS):
            line_id = self._id("00k", number * len(PRODUCTS) + position)
            lines.append(
                {
                    "attributes": {
                        "type": "OpportunityLineItem",
                        "url": f"/services/data/{API_VERSION}/sobjects/"
                        f"OpportunityLineItem/{line_id}",
                    },
                    "Id": line_id,
                    "PricebookEntry": {
                        "attributes": {"type": "PricebookEntry", "url": "/x"},
                        "Product2": {
                            "attributes": {"type": "Product2", "url": "/y"},
                            "ProductCode": code,
                        },
                    },
                    "Quantity": float(position + 1),
                    "UnitPrice": 100.0 * (position + 1) + number % 7,
                    "Discount": 5.0 if position == 1 else None,
                    "Description": None,
                    "Billing_Type__c": billing_type,
                }
            )
        return {
            "attributes": {
                "type": "Opportunity",
                "url": f"/services/data/{API_VERSION}/sobjects/Opportunity/"
                f"{opportunity_id}",
            },
            "Id": opportunity_id,
            "AccountId": self.account_id(number),
            "Name": f"Bench deal {self.tag}-{number}",
            "CloseDate": "2026-02-01",
            "CurrencyIsoCode": "USD",
            "StageName": "Closed Won",
            "Amount": sum(line["UnitPrice"] * line["Quantity"] for line in lines),
            "IsWon": True,
            "Description": None,
            "Pricebook2Id": "01s5e00000BENCHAAA",
            "SystemModstamp": _stamp(moment),
            "LastModifiedDate": _stamp(moment),
            "Account": self.account(number, embedded=True),
            "OpportunityLineItems": {
                "totalSize": len(lines),
                "done": True,
                "records": lines,
            },
        }

    def page(self, sobject, offset):
        """The query result page of ``sobject`` starting at ``offset``."""
        total = 0 if sobject == "Contact" else self.size
        make = self.account if sobject == "Account" else self.opportunity
        end = min(total, offset + PAGE_SIZE)
        body = {
            "totalSize": total,
            "done": end >= total,
            "records": [make(number) for number in range(offset, end)],
        }
        if end < total:
            locator = f"01g{self.tag}{sobject[0]}00000"
            body["nextRecordsUrl"] = (
                f"/services/data/{API_VERSION}/query/{locator}-{end}"
            )
        return body


class MockedSalesforce:
    """The org's endpoints on a ``responses`` mock, and what they were asked."""

    NEXT_RE = re.compile(rf"^{re.escape(API)}/query/01g\w{{3}}(\w)0+-(\d+)$")

    def __init__(self, org):
        import responses

        self.org = org
        self.written = 0
        self.written_ids = set()
        self.collection_sizes = []
        self.mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self.mock.add_callback(responses.POST, TOKEN_URL, callback=self.token)
        self.mock.add_callback(responses.GET, f"{API}/query", callback=self.query)
        self.mock.add_callback(
            responses.GET, re.compile(rf"{re.escape(API)}/query/.+"), callback=self.next
        )
        self.mock.add_callback(
            responses.PATCH, COLLECTIONS_URL, callback=self.collections
        )

    def _answer(self, body):
        usage = f"api-usage={len(self.mock.calls)}/1000000"
        return (200, {"Sforce-Limit-Info": usage}, json.dumps(body))

    def token(self, request):
        return (
            200,
            {},
            json.dumps(
                {
                    "access_token": "00Dbench!token",
                    "instance_url": INSTANCE,
                    "token_type": "Bearer",
                    "scope": "api",
                    "issued_at": "1775000000000",
                    "id": f"https://test.salesforce.com/id/{ORG_ID}/005000000000001",
                }
            ),
        )

    def query(self, request):
        soql_text = parse_qs(urlsplit(request.url).query)["q"][0]
        sobject = re.search(r" FROM (\w+) ", soql_text).group(1)
        return self._answer(self.org.page(sobject, 0))

    def next(self, request):
        match = self.NEXT_RE.match(request.url)
        sobject = {"A": "Account", "C": "Contact", "O": "Opportunity"}[match.group(1)]
        return self._answer(self.org.page(sobject, int(match.group(2))))

    def collections(self, request):
        records = json.loads(request.body)["records"]
        self.collection_sizes.append(len(records))
        self.written += len(records)
        self.written_ids.update(record["id"] for record in records)
        results = [{"id": r["id"], "success": True, "errors": []} for r in records]
        return self._answer(results)

    def calls_by_endpoint(self):
        counts = Counter()
        for call in self.mock.calls:
            url = call.request.url
            if url.startswith(TOKEN_URL):
                counts["token"] += 1
            elif url.startswith(f"{API}/query?"):
                # The last FROM is the query's own (the first may be a subquery's).
                sobjects = re.findall(r"FROM\+(\w+)\+", url)
                counts[f"query {sobjects[-1] if sobjects else '?'}"] += 1
            elif url.startswith(f"{API}/query/"):
                kind = self.NEXT_RE.match(url).group(1)
                name = {"A": "Account", "C": "Contact", "O": "Opportunity"}[kind]
                counts[f"query {name}"] += 1
            elif url.startswith(COLLECTIONS_URL):
                counts["composite/sobjects"] += 1
            else:
                counts[f"other {call.request.method} {url}"] += 1
        return counts


# -------------------------------------------------------------------- odoo


def open_registry(db):
    import odoo

    odoo.tools.config.parse_config(
        ["-d", db, "--addons-path", odoo_paths(), "--log-level", "warn"]
    )
    return odoo.modules.registry.Registry(db)


def prepare(registry, tag, confirm):
    """Products (once), earlier bench backends disabled, a new sandbox backend.

    :returns: the new backend's id
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        Product = env["product.product"]
        for code, name, values, _billing in PRODUCTS:
            if not Product.search([("default_code", "=", code)], limit=1):
                Product.create(
                    {
                        "name": name,
                        "default_code": code,
                        "service_tracking": "no",
                        **values,
                    }
                )
        earlier = env["qtc.backend"].search(
            [("provider", "=", "salesforce"), ("name", "like", "Bench org%")]
        )
        earlier.write({"state": "disabled"})
        # An interrupted run leaves jobs the worker would otherwise run here.
        cr.execute(
            "UPDATE qtc_job SET state = 'cancelled' "
            "WHERE backend_id = ANY(%s) AND state IN ('pending', 'started')",
            [earlier.ids],
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        backend = env["qtc.backend"].create(
            {
                "name": f"Bench org {tag}",
                "provider": "salesforce",
                "environment": "sandbox",
                "state": "active",
                "salesforce_instance_url": INSTANCE,
                "salesforce_consumer_key": "3MVG9-bench-consumer-key",
                "salesforce_username": "integration@bench.example.sandbox",
                "salesforce_org_id": ORG_ID,
                "salesforce_confirm_orders": confirm,
            }
        )
        backend._qtc_set_secret("salesforce_private_key", pem)
        return backend.id


def instrument_jobs(registry):
    """Time every job's target method (claim and commit excluded).

    :returns: the list ``[(method name, event id, seconds)]`` it fills
    """
    timings = []
    job_class = registry["qtc.job"]
    original = getattr(job_class, "_bench_original_execute", job_class._qtc_execute)
    job_class._bench_original_execute = original

    def timed_execute(self, job):
        started = time.perf_counter()
        try:
            return original(self, job)
        finally:
            timings.append(
                (job["method_name"], job["event_id"], time.perf_counter() - started)
            )

    job_class._qtc_execute = timed_execute
    return timings


def run_sync(registry, backend_id, org, max_seconds):
    """Queue the sweep and run the job worker until no job is ready."""
    import odoo
    from odoo import SUPERUSER_ID, api

    salesforce = MockedSalesforce(org)
    timings = instrument_jobs(registry)
    with salesforce.mock, registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["qtc.backend"].browse(backend_id).action_salesforce_sync_now()
        cr.commit()  # the sweep's first job exists once this commits
        queries_before = odoo.sql_db.sql_counter
        started = time.perf_counter()
        ran = env["qtc.job"]._qtc_run_worker(max_seconds=max_seconds)
        # Jobs whose attempt failed wait for their retry (eta): report them,
        # then run them at once so the figures cover the whole sync.
        cr.execute(
            "SELECT count(*) FROM qtc_job WHERE backend_id = %s "
            "AND state = 'pending' AND eta IS NOT NULL",
            [backend_id],
        )
        waiting = cr.fetchone()[0]
        rounds = 0
        while waiting and rounds < 5:
            rounds += 1
            cr.execute(
                "UPDATE qtc_job SET eta = NULL WHERE backend_id = %s "
                "AND state = 'pending'",
                [backend_id],
            )
            cr.commit()
            ran += env["qtc.job"]._qtc_run_worker(max_seconds=max_seconds)
            cr.execute(
                "SELECT count(*) FROM qtc_job WHERE backend_id = %s "
                "AND state = 'pending'",
                [backend_id],
            )
            waiting = cr.fetchone()[0]
        elapsed = time.perf_counter() - started
        cr.execute(
            "SELECT count(*), coalesce(sum(attempts - 1), 0) FROM qtc_job "
            "WHERE backend_id = %s AND attempts > 1",
            [backend_id],
        )
        retried_jobs, extra_attempts = cr.fetchone()
        queries = odoo.sql_db.sql_counter - queries_before
        calls = salesforce.calls_by_endpoint()  # the mock forgets them on exit
    return {
        "seconds": elapsed,
        "jobs": ran,
        "queries": queries,
        "timings": timings,
        "calls": calls,
        "written": salesforce.written,
        "distinct_written": len(salesforce.written_ids),
        "retried": (retried_jobs, extra_attempts, rounds),
        "collection_sizes": salesforce.collection_sizes,
    }


def outcome(registry, backend_id, timings):
    """What the sync left in the database (to trust the rates) and the time
    per kind of job."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        bindings = env["qtc.binding"].search([("backend_id", "=", backend_id)])
        counts = Counter(bindings.mapped("external_type"))
        order_ids = bindings.filtered(lambda b: b.res_model == "sale.order").mapped(
            "res_id"
        )
        states = Counter(env["sale.order"].browse(order_ids).mapped("state"))
        jobs = env["qtc.job"].search([("backend_id", "=", backend_id)])
        job_states = Counter(jobs.mapped("state"))
        exceptions = env["qtc.exception"].search_count(
            [("backend_id", "=", backend_id)]
        )
        pending_writeback = env["qtc.binding"].search_count(
            [
                ("backend_id", "=", backend_id),
                ("salesforce_writeback_pending", "=", True),
            ]
        )
        event_ids = [event_id for _m, event_id, _s in timings if event_id]
        cr.execute(
            "SELECT id, event_type FROM qtc_event WHERE id = ANY(%s)", [event_ids]
        )
        event_types = dict(cr.fetchall())
    per_kind = defaultdict(lambda: [0, 0.0])
    for method, event_id, seconds in timings:
        kind = method
        if event_id:
            kind = f"apply {event_types.get(event_id, '?').split('.')[0]}"
        per_kind[kind][0] += 1
        per_kind[kind][1] += seconds
    return {
        "bindings": counts,
        "order_states": states,
        "job_states": job_states,
        "exceptions": exceptions,
        "pending_writeback": pending_writeback,
        "per_kind": dict(per_kind),
    }


def run_baseline(registry, org, confirm):
    """Plain ORM: the same partners and orders, batched ``create`` (and one
    ``action_confirm`` when the backend confirms), committed."""
    import odoo
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        country = env["res.country"].search([("code", "=", "US")], limit=1)
        state = env["res.country.state"].search(
            [("country_id", "=", country.id), ("code", "=", "CA")], limit=1
        )
        products = {
            code: env["product.product"].search([("default_code", "=", code)], limit=1)
            for code, *_rest in PRODUCTS
        }
        queries_before = odoo.sql_db.sql_counter
        started = time.perf_counter()
        partner_values = []
        for number in range(org.size):
            account = org.account(number)
            street, _sep, street2 = account["BillingStreet"].partition("\n")
            partner_values.append(
                {
                    "name": f"{account['Name']} (baseline)",
                    "is_company": True,
                    "street": street,
                    "street2": street2,
                    "city": account["BillingCity"],
                    "zip": account["BillingPostalCode"],
                    "country_id": country.id,
                    "state_id": state.id,
                    "phone": account["Phone"],
                    "website": account["Website"],
                }
            )
        partners = env["res.partner"].create(partner_values)
        order_values = []
        for number, partner in enumerate(partners):
            opportunity = org.opportunity(number)
            lines = opportunity["OpportunityLineItems"]["records"]
            order_values.append(
                {
                    "partner_id": partner.id,
                    "client_order_ref": opportunity["Name"],
                    "origin": f"Baseline {opportunity['Id']}",
                    "order_line": [
                        odoo.Command.create(
                            {
                                "product_id": products[
                                    line["PricebookEntry"]["Product2"]["ProductCode"]
                                ].id,
                                "product_uom_qty": line["Quantity"],
                                "price_unit": line["UnitPrice"],
                                "discount": line["Discount"] or 0.0,
                            }
                        )
                        for line in lines
                    ],
                }
            )
        orders = env["sale.order"].create(order_values)
        if confirm:
            orders.action_confirm()
        env.flush_all()
        cr.commit()
        elapsed = time.perf_counter() - started
        queries = odoo.sql_db.sql_counter - queries_before
    return {"seconds": elapsed, "queries": queries}


# ------------------------------------------------------------------ report


def bench_size(registry, size, confirm, max_seconds):
    # Three characters in every record id: each run's org is new to Odoo.
    tag = "".join(random.choices(string.ascii_uppercase + string.digits, k=3))
    org = FakeOrg(size, tag)
    print(f"\n== {size:,} accounts + {size:,} opportunities (3 lines each)", flush=True)
    backend_id = prepare(registry, tag, confirm)
    baseline = run_baseline(registry, org, confirm)
    sync = run_sync(registry, backend_id, org, max_seconds)
    result = outcome(registry, backend_id, sync["timings"])

    records = 2 * size
    sync_rate = records / sync["seconds"]
    base_rate = records / baseline["seconds"]
    print(
        f"  sync (sweep + apply{' + confirm' if confirm else ''} + write-back): "
        f"{sync['seconds']:8.1f} s = {sync_rate:7.1f} records/s "
        f"({sync['jobs']:,} jobs)"
    )
    print(
        f"  baseline ORM create{' + confirm' if confirm else ''}:"
        f"{' ' * (17 if confirm else 27)}{baseline['seconds']:8.1f} s = "
        f"{base_rate:7.1f} records/s"
    )
    print(f"  ratio sync / baseline: {sync_rate / base_rate:.2f}x")
    print("  time inside jobs (claim and commit excluded):")
    for kind, (count, seconds) in sorted(result["per_kind"].items()):
        print(
            f"    {kind:<30} {count:6,} jobs {seconds:8.1f} s "
            f"({1000 * seconds / count:7.1f} ms each)"
        )
    inside = sum(seconds for _count, seconds in result["per_kind"].values())
    print(
        f"    {'job runner (claim, commit)':<30} {'':>11} "
        f"{sync['seconds'] - inside:8.1f} s"
    )
    retried_jobs, extra_attempts, rounds = sync["retried"]
    print(
        f"  jobs that needed another attempt: {retried_jobs} ({extra_attempts} "
        f"extra attempts; {rounds} retry pass(es) with their delay skipped)"
    )
    print(
        f"  SQL queries per opportunity: sync {sync['queries'] / size:.0f}, "
        f"baseline {baseline['queries'] / size:.0f}"
    )
    calls = sync["calls"]
    reads = sum(n for name, n in calls.items() if name.startswith("query"))
    pages = 2 * math.ceil(size / PAGE_SIZE) + 1
    writes = calls.get("composite/sobjects", 0)
    # The goal counts records that needed writing, once each: a record sent
    # again (a retried job) spends calls the goal does not allow.
    bound = math.ceil(sync["distinct_written"] / COLLECTION_SIZE)
    print(f"  API calls: {sum(calls.values())} in all")
    for name, count in sorted(calls.items()):
        print(f"    {name:<30} {count:6}")
    print(
        f"    reads: {reads} (one per {PAGE_SIZE:,}-record page: {pages}); "
        f"writes: {writes} calls sent {sync['written']:,} records, "
        f"{sync['distinct_written']:,} distinct "
        f"(goal: at most ceil(distinct/200) = {bound}: "
        f"{'kept' if writes <= bound else 'EXCEEDED'}); "
        f"sizes {summarize(sync['collection_sizes'])}"
    )
    print(
        f"  left in Odoo: bindings {dict(result['bindings'])}; orders "
        f"{dict(result['order_states'])}; jobs {dict(result['job_states'])}; "
        f"exceptions {result['exceptions']}; write-back pending "
        f"{result['pending_writeback']}",
        flush=True,
    )
    return sync_rate, base_rate


def summarize(sizes):
    if not sizes:
        return "-"
    counts = Counter(sizes)
    return ", ".join(f"{n}x{size}" for size, n in sorted(counts.items(), reverse=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="qtc_bench_sf")
    parser.add_argument(
        "--sizes",
        default="1000",
        help="comma-separated opportunity counts (default 1000)",
    )
    parser.add_argument(
        "--large", action="store_true", help="also run 10,000 opportunities"
    )
    parser.add_argument(
        "--no-confirm",
        action="store_true",
        help="backend setting 'Confirm orders' off (and no confirm in the baseline)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=3600,
        help="bound on the worker loop of one size",
    )
    parser.add_argument("--recreate-db", action="store_true")
    parser.add_argument(
        "--no-update",
        action="store_true",
        help="use an existing database as it is (no module update first)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.large and 10000 not in sizes:
        sizes.append(10000)
    ensure_database(args.db, args.recreate_db, not args.no_update)
    registry = open_registry(args.db)
    print(
        "Figures are wall-clock times on this machine, shared with whatever else "
        "runs on it: compare the ratios of one run."
    )
    summary = []
    for size in sizes:
        began = time.perf_counter()
        sync_rate, base_rate = bench_size(
            registry, size, not args.no_confirm, args.max_seconds
        )
        summary.append((size, sync_rate, base_rate, time.perf_counter() - began))
    print("\nSummary")
    for size, sync_rate, base_rate, seconds in summary:
        print(
            f"  {size:>6,} opportunities: {sync_rate:7.1f} records/s synced, "
            f"baseline {base_rate:7.1f}/s, ratio {sync_rate / base_rate:.2f}x "
            f"(this size took {seconds / 60:.1f} min)"
        )


if __name__ == "__main__":
    main()
