import json
import logging
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.access import GROUP_MANAGER, check_action
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.addons.qtc_connector_base.lib import signature
from odoo.addons.qtc_connector_base.lib.job_function import job_function
from odoo.addons.qtc_connector_base.lib.resources import record_name
from odoo.addons.qtc_connector_base.models.qtc_backend import InboundEvent
from odoo.exceptions import ValidationError
from odoo.tools import split_every

from .. import const
from ..applier import BatchApplier
from ..lib import billing_writeback as billing
from ..lib import harvest
from ..lib import work_item as wi

_logger = logging.getLogger(__name__)

MANAGER_GROUP = GROUP_MANAGER


class QtcBackend(models.Model):
    _inherit = "qtc.backend"

    provider = fields.Selection(
        selection_add=[
            (const.PROVIDER_PUSH, "PSA push API"),
            (const.PROVIDER_HARVEST, "Harvest"),
        ],
        ondelete={
            const.PROVIDER_PUSH: "set default",
            const.PROVIDER_HARVEST: "set default",
        },
    )
    # Common to both PSA providers.
    psa_batch_max = fields.Integer(
        string="Max items per batch",
        default=const.DEFAULT_BATCH_MAX,
        help="A pushed batch with more items is refused (413): split it.",
    )
    psa_rate_policy = fields.Selection(
        const.RATE_POLICIES,
        string="Rate differs from the order",
        default="bill_order_price",
        required=True,
        help="When the PSA rate of a time entry differs from the sale order line "
        "price: bill the order's price and flag the difference, or stop the item "
        "with a 'rate' exception.",
    )
    psa_expense_product_id = fields.Many2one(
        "product.product",
        string="Expense product",
        help="Product of the sale order lines that re-invoice PSA expenses. Its "
        "'Re-Invoice Costs' policy decides the price: at cost (the PSA amount) or "
        "at its sales price; 'No' records the expense without billing it.",
    )
    # Harvest.
    harvest_account_id = fields.Char(string="Harvest account id")
    harvest_token = fields.Char(
        string="Harvest personal access token",
        qtc_secret="harvest_token",  # noqa: S106 - the credential name
        compute="_compute_qtc_secrets",
        inverse="_inverse_qtc_secrets",
        groups=MANAGER_GROUP,
    )
    harvest_watermark = fields.Datetime(
        string="Harvest synced up to",
        help="Records updated since then (minus a few minutes of overlap) are "
        "read at the next sync. Clear it to read everything again (re-read "
        "records are recognised and change nothing).",
    )
    harvest_use_rounded_hours = fields.Boolean(
        string="Bill Harvest rounded hours",
        help="Import Harvest's rounded_hours instead of the tracked hours.",
    )
    # Billing write-back (push API backends; Harvest's API cannot take it).
    psa_push_billing_url = fields.Char(
        string="Billing callback URL",
        help="When a customer invoice that bills items of this backend is posted, "
        "cancelled or reversed by a credit note, Odoo POSTs one signed JSON "
        "document per invoice here (contract: static/api/openapi.yaml). Empty: "
        "nothing is sent; the PSA can still poll the billing status endpoint.",
    )
    psa_push_billing_secret = fields.Char(
        string="Billing callback signing secret",
        qtc_secret="psa_billing_secret",  # noqa: S106 - the credential name
        compute="_compute_qtc_secrets",
        inverse="_inverse_qtc_secrets",
        groups=MANAGER_GROUP,
        help="Write-only. Signs the billing callbacks; when empty they are signed "
        "with the webhook signing secret.",
    )

    _sql_constraints = [
        (
            "psa_batch_max_positive",
            "CHECK(psa_batch_max > 0)",
            "The batch size limit must be positive.",
        )
    ]

    # ---------------------------------------------------------------- actions

    def action_harvest_sync_now(self):
        """Queue a Harvest sync of this backend now (one at a time; QTC
        Managers)."""
        check_action(self, GROUP_MANAGER, "write", _("start a Harvest sync"))
        for backend in self:
            if backend.provider != const.PROVIDER_HARVEST:
                continue
            backend._harvest_enqueue_sync()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Harvest"),
                "message": _("Sync queued; see the backend's jobs."),
                "type": "info",
            },
        }

    # ----------------------------------------------------------- push/store

    def _psa_store_items(self, results, headers=None, config=None):
        """Store the valid items of a validated batch as events, in one statement.

        Shared by the push API and the Harvest pull, so both take one path.
        Each accepted item becomes one ``qtc.event`` whose external id is the
        item's idempotency key: a delivery received before is a duplicate.
        The new events of one call are applied together through
        ``_qtc_handle_events`` by batch jobs (``batch=True``), each declaring
        the projects and sale orders its items write
        (``_psa_project_resources``): one job, or one per job worker when
        the items belong to engagements that can be applied apart
        (``spread=True``).

        :param results: ``ItemResult`` list from ``work_item.validate_batch``
        :param headers: request headers worth keeping
        :param config: the cached ``WebhookConfig`` (spares a lookup)
        :returns: one ``{"external_id", "status", "reasons"}`` dict per result,
            in order, with ``status`` accepted, duplicate or rejected
        """
        self.ensure_one()
        accepted = [result.item for result in results if result.accepted]
        stored = {}
        if accepted:
            events = [
                InboundEvent(
                    wi.idempotency_key(item),
                    f"{const.EVENT_TYPE_PREFIX}{item.kind}",
                    json.dumps(item.as_dict(), separators=(",", ":")),
                )
                for item in accepted
            ]
            stored = self._qtc_store_events(
                events,
                headers,
                config,
                batch=True,
                resources=self._psa_item_resources(accepted),
                spread=True,
            )
        answers = []
        for result in results:
            status = result.status
            if result.accepted and wi.idempotency_key(result.item) not in stored:
                status = wi.ITEM_DUPLICATE
            answers.append(
                {
                    "external_id": result.external_id,
                    "status": status,
                    "reasons": [dict(reason) for reason in result.reasons],
                }
            )
        return answers

    def _psa_item_resources(self, items):
        """What applying each work item writes, for the queue: its project and
        the sale orders billed from it (``_psa_project_resources``), plus the
        order of a milestone's sale order line. A few queries per call,
        whatever the number of items.

        :param items: validated ``WorkItem`` list
        :returns: one list of resource names per item
        """
        self.ensure_one()
        projects = self._psa_project_resources({item.project_ref for item in items})
        milestone_refs = {item.milestone_ref for item in items if item.milestone_ref}
        milestones = {}
        if milestone_refs:
            resolved = self.env["qtc.psa.item"]._psa_resolve_many(
                self,
                const.BINDING_MILESTONE,
                const.MAP_MILESTONE,
                milestone_refs,
                "sale.order.line",
            )
            for ref, line in resolved.items():
                if isinstance(line, models.BaseModel) and line._name == (
                    "sale.order.line"
                ):
                    milestones[ref] = [record_name("sale.order", line.order_id.id)]
        return [
            projects[item.project_ref] + milestones.get(item.milestone_ref, [])
            for item in items
        ]

    def _psa_project_resources(self, project_refs):
        """The resources of the items of each PSA project: the Odoo project it
        maps to and every sale order its items are billed on (the project's,
        which also takes its expenses, and its employee mappings'). Two
        projects sold on one order share that order. An unmapped project is
        named by its reference (its items fail until it is mapped).

        :returns: ``{project_ref: [resource name, ...]}``
        """
        self.ensure_one()
        resolved = self.env["qtc.psa.item"]._psa_resolve_many(
            self,
            const.BINDING_PROJECT,
            const.MAP_PROJECT,
            project_refs,
            "project.project",
        )
        found = {}
        for ref in project_refs:
            project = resolved.get(ref)
            if not isinstance(project, models.BaseModel) or project._name != (
                "project.project"
            ):
                found[ref] = [f"psa.project:{self.id}:{ref}"]
                continue
            orders = (
                project.sale_line_id.order_id
                | project.sale_line_employee_ids.sale_line_id.order_id
            )
            found[ref] = [record_name("project.project", project.id)] + [
                record_name("sale.order", order_id) for order_id in orders.ids
            ]
        return found

    # ---------------------------------------------------------------- harvest

    def _harvest_enqueue_sync(self):
        self.ensure_one()
        return self.env["qtc.job"]._qtc_enqueue(
            self,
            "_harvest_sync",
            name=_("Harvest sync of %s", self.name),
            backend=self,
            identity_key=f"harvest:sync:{self.id}",
            # One sync of a backend at a time: each moves its watermark.
            resources=[f"harvest.sync:{self.id}"],
            user=self._qtc_technical_user(),
        )

    @api.model
    def _harvest_cron_sync(self):
        """Cron: queue one sync per active Harvest backend."""
        for backend in self.search(
            [("provider", "=", const.PROVIDER_HARVEST), ("state", "=", "active")]
        ):
            backend._harvest_enqueue_sync()

    def _harvest_headers(self):
        self.ensure_one()
        if not self.harvest_account_id:
            raise BusinessError(
                _("Backend %s has no Harvest account id.", self.name),
                category="configuration",
            )
        return {
            "Harvest-Account-Id": self.harvest_account_id,
            "Authorization": f"Bearer {self._qtc_get_secret('harvest_token')}",
            "User-Agent": const.HARVEST_USER_AGENT,
            "Accept": "application/json",
        }

    def _harvest_get_json(self, url):
        """GET one Harvest URL and decode it; 429/5xx raise ``RetryableError``
        (honouring ``Retry-After``), other 4xx a business error."""
        response = self._qtc_request("GET", url, headers=self._harvest_headers())
        try:
            return response.json()
        except ValueError:
            raise BusinessError(
                _("Harvest answered %s with a body that is not JSON.", url),
                category="remote_rejected",
            ) from None

    def _harvest_user_emails(self):
        users = []
        url = f"{const.HARVEST_API_URL}/v2/users?per_page={const.HARVEST_PER_PAGE}"
        for page in harvest.iter_pages(self._harvest_get_json, url):
            users.extend(page.data.get("users") or [])
        return harvest.user_email_map(users)

    @job_function
    def _harvest_sync(self):
        """Job: read time entries and expenses updated since the watermark,
        store them as work-item events (the push API's path) and advance the
        watermark once both listings are complete.

        :returns: a short summary for the job
        """
        self.ensure_one()
        started_at = datetime.now(UTC)
        previous = (
            self.harvest_watermark.replace(tzinfo=UTC)
            if self.harvest_watermark
            else None
        )
        emails = self._harvest_user_emails()
        currency = self.company_id.currency_id.name
        tracker = harvest.WatermarkTracker(previous, started_at)
        params = urlencode(
            harvest.list_params(previous, per_page=const.HARVEST_PER_PAGE)
        )
        listings = (
            (
                "time_entries",
                lambda records: harvest.map_time_entries(
                    records, emails, use_rounded_hours=self.harvest_use_rounded_hours
                ),
            ),
            (
                "expenses",
                lambda records: harvest.map_expenses(records, emails, currency),
            ),
        )
        counts = {"pages": 0, wi.ITEM_ACCEPTED: 0, wi.ITEM_DUPLICATE: 0}
        counts[wi.ITEM_REJECTED] = counts["problems"] = counts["skipped"] = 0
        for resource, map_records in listings:
            url = f"{const.HARVEST_API_URL}/v2/{resource}?{params}"
            for page in harvest.iter_pages(self._harvest_get_json, url):
                records = page.data.get(resource) or []
                mapped = map_records(records)
                results = wi.validate_batch(
                    list(mapped.items), max_items=max(len(mapped.items), 1)
                )
                for answer in self._psa_store_items(results):
                    counts[answer["status"]] += 1
                    if answer["status"] == wi.ITEM_REJECTED:
                        self._harvest_report_problem(
                            answer["external_id"],
                            "; ".join(
                                f"{r['field'] or 'item'}: {r['message']}"
                                for r in answer["reasons"]
                            ),
                        )
                for problem in mapped.problems:
                    counts["problems"] += 1
                    self._harvest_report_problem(
                        harvest.external_id_for(
                            problem["source"], problem["source_id"]
                        ),
                        f"{problem['field'] or 'record'}: {problem['message']}",
                    )
                counts["skipped"] += len(mapped.skipped)
                tracker.page_done(records)
                counts["pages"] += 1
                self.env["qtc.job"]._qtc_progress(
                    counts["pages"], 0, _("%s: page %s", resource, counts["pages"])
                )
        watermark = tracker.finish()
        if watermark is not None:
            self.harvest_watermark = watermark.astimezone(UTC).replace(tzinfo=None)
        return (
            f"{counts['pages']} page(s): {counts[wi.ITEM_ACCEPTED]} new item(s), "
            f"{counts[wi.ITEM_DUPLICATE]} duplicate(s), "
            f"{counts[wi.ITEM_REJECTED] + counts['problems']} problem(s), "
            f"{counts['skipped']} skipped; watermark {self.harvest_watermark or '-'}"
        )

    def _harvest_report_problem(self, external_id, message):
        """Open one exception per Harvest record a person must look at (the
        same record failing again at the next sync counts an occurrence)."""
        self.ensure_one()
        # Boundary (system): the exception queue is written by the system (the
        # sync runs as the technical user, who only reads it).
        exceptions = self.env["qtc.exception"].sudo()
        existing = exceptions.search(
            [
                ("backend_id", "=", self.id),
                ("external_type", "=", "harvest"),
                ("external_id", "=", external_id or "-"),
                ("state", "=", "open"),
            ],
            limit=1,
        )
        if existing:
            existing.write(
                {"occurrences": existing.occurrences + 1, "details": message}
            )
            return existing
        return exceptions.create(
            {
                "name": _("Harvest record %(id)s not imported", id=external_id),
                "category": "data",
                "details": message,
                "backend_id": self.id,
                "company_id": self.company_id.id,
                "job_id": self.env.context.get("qtc_job_id") or False,
                "correlation_id": self.env.context.get("qtc_correlation_id"),
                "external_type": "harvest",
                "external_id": external_id or "-",
                "suggested_action": _(
                    "Fix the record in Harvest (or the user's email); the next "
                    "sync reads it again."
                ),
            }
        )

    # ---------------------------------------------------- billing write-back

    @api.constrains("psa_push_billing_url", "environment")
    def _check_psa_push_billing_url(self):
        for backend in self:
            url = (backend.psa_push_billing_url or "").strip()
            if not url:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValidationError(
                    _(
                        "The billing callback URL must be an http(s) URL with a "
                        "host, e.g. https://psa.example.com/hooks/odoo-billing."
                    )
                )
            # The same rules as when the callback is sent (internal addresses,
            # https in production); a name is checked again at each send.
            refused = backend._qtc_outbound_url_problem(url)
            if refused:
                raise ValidationError(
                    _("Billing callback URL: %(problem)s", problem=refused)
                )

    def _psa_writes_billing_back(self):
        """True when invoices billing this backend's items are written back."""
        self.ensure_one()
        return self.provider == const.PROVIDER_PUSH and bool(
            (self.psa_push_billing_url or "").strip()
        )

    def _psa_billing_secret(self):
        """The secret billing callbacks are signed with: the dedicated one, else
        the webhook signing secret (never logged or returned)."""
        self.ensure_one()
        return self._qtc_get_secret(
            "psa_billing_secret", required=False
        ) or self._qtc_get_secret("webhook_secret")

    @job_function
    def _psa_send_billing(self, body, idempotency_key):
        """Job: POST one invoice's billing write-back to the callback URL,
        signed with the base HMAC scheme.

        The body was built when the invoice changed state, so a retry sends the
        same document under the same idempotency key (a fresh signature
        timestamp each attempt). 429, 5xx and timeouts raise ``RetryableError``
        (the job backs off and retries); another 4xx is a business error that
        stops the job with an exception.

        :param body: the ``billing_writeback.callback_body`` dict
        :returns: a short summary for the job
        """
        self.ensure_one()
        url = (self.psa_push_billing_url or "").strip()
        if not url:
            raise BusinessError(
                _(
                    "Backend %s has no billing callback URL any more; invoice "
                    "%s was not written back.",
                    self.name,
                    body["invoice"]["number"],
                ),
                category="configuration",
                suggested_action=_("Set the URL on the backend, then Retry."),
            )
        raw = billing.encode(body)
        response = self._qtc_request(
            "POST",
            url,
            data=raw,
            headers={
                "Content-Type": "application/json",
                signature.HEADER: signature.sign(raw, self._psa_billing_secret()),
            },
            idempotency_key=idempotency_key,
        )
        return _(
            "%(number)s %(state)s: %(count)s item(s) written back (HTTP %(status)s)",
            number=body["invoice"]["number"],
            state=body["invoice"]["state"],
            count=len(body["items"]),
            status=response.status_code,
        )

    # ------------------------------------------------------------------ hooks

    def _qtc_binding_models(self):
        if self.provider not in const.PSA_PROVIDERS:
            return super()._qtc_binding_models()
        return dict(const.BINDING_MODELS)

    def _qtc_outbound_hosts(self):
        # The push API's billing callback goes to the customer's own PSA: no
        # hosts are declared, so no stored secret may travel there (the
        # callback carries only its signature).
        if self.provider != const.PROVIDER_HARVEST:
            return super()._qtc_outbound_hosts()
        return const.HARVEST_HOSTS

    def _qtc_webhook_path(self):
        if self.provider == const.PROVIDER_HARVEST:
            return False
        if self.provider != const.PROVIDER_PUSH:
            return super()._qtc_webhook_path()
        self.ensure_one()
        return f"/qtc/psa/{self.id}/work_items"

    def _qtc_test_connection(self):
        if self.provider == const.PROVIDER_PUSH:
            secrets = (
                self.env["qtc.credential"]
                .sudo()
                .search_count(
                    [("backend_id", "=", self.id), ("key", "=", "webhook_secret")]
                )
            )
            if not secrets:
                raise BusinessError(
                    _(
                        "Set the webhook signing secret: the push API refuses "
                        "every request until then."
                    ),
                    category="configuration",
                )
            return _(
                "Push API ready at %s.", self.webhook_url or self._qtc_webhook_path()
            )
        if self.provider != const.PROVIDER_HARVEST:
            return super()._qtc_test_connection()
        data = self._harvest_get_json(f"{const.HARVEST_API_URL}/v2/users/me")
        return _("Connected to Harvest as %(email)s.", email=data.get("email") or "?")

    def _psa_parse_event(self, event):
        """The validated ``WorkItem`` a stored event carries.

        :raises BusinessError: (data) the payload is not JSON or not a valid item
        """
        try:
            return wi.validate_work_item(event._qtc_payload_json())
        except wi.WorkItemError as exc:
            raise BusinessError(
                _("Work item of event %s is invalid.", event.external_id),
                category="data",
                problems=[
                    f"{p['field'] or 'item'}: {p['message']}" for p in exc.problems
                ],
                suggested_action=_("Correct the payload and replay the event."),
            ) from None
        except ValueError as exc:
            raise BusinessError(
                _("Payload of event %s is not JSON.", event.external_id),
                category="data",
                problems=[str(exc)],
            ) from None

    def _qtc_event_resources(self, events):
        """The projects and sale orders stored work items write (see
        ``_psa_item_resources``); an unreadable payload names nothing."""
        if self.provider not in const.PSA_PROVIDERS:
            return super()._qtc_event_resources(events)
        self.ensure_one()
        items = []
        for event in events:
            try:
                items.append(wi.validate_work_item(json.loads(event.payload or "")))
            except ValueError:  # WorkItemError too: the job reports it
                items.append(None)
        declared = iter(self._psa_item_resources([i for i in items if i]))
        return [next(declared) if item else [] for item in items]

    def _qtc_handle_event(self, event):
        if self.provider not in const.PSA_PROVIDERS:
            return super()._qtc_handle_event(event)
        if event.event_type == const.EVENT_RECONCILIATION_TOTALS:
            return self.env["qtc.reconciliation.run"]._psa_run_from_totals(self, event)
        if not (event.event_type or "").startswith(const.EVENT_TYPE_PREFIX):
            return "ignored"
        item = self._psa_parse_event(event)
        return self.env["qtc.psa.item"]._psa_apply(self, item)

    def _qtc_handle_events(self, events):
        """Apply a batch of work-item events with bulk queries (see
        ``applier.BatchApplier``), ``const.BATCH_CHUNK_SIZE`` events at a time,
        reporting the job's progress after each chunk.

        :returns: ``{event id: (state, text)}``; a business problem of one item
            opens its own exception and fails only its event
        """
        if self.provider not in const.PSA_PROVIDERS:
            return super()._qtc_handle_events(events)
        self.ensure_one()
        applier = BatchApplier(self)
        outcomes = {}
        total = len(events)
        done = 0
        for chunk in split_every(const.BATCH_CHUNK_SIZE, events.ids, events.browse):
            outcomes.update(applier.apply(chunk))
            done += len(chunk)
            self.env["qtc.job"]._qtc_progress(
                done,
                total,
                _("%(done)s of %(total)s work items applied", done=done, total=total),
            )
            if done < total:
                # Bounded memory on very large batches: the next chunk starts
                # from a clean cache (its records are read again anyway).
                self.env.flush_all()
                self.env.invalidate_all()
        return outcomes
