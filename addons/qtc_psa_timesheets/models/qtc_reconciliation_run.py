import json
from decimal import Decimal
from urllib.parse import urlencode

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.addons.qtc_connector_base.lib.reconcile import Entry
from odoo.tools import SQL

from .. import const
from ..lib import harvest
from ..lib import reconciliation as psa_reconciliation
from ..lib import work_item as wi

KIND_HARVEST = "psa_harvest_items"
KIND_PUSHED = "psa_pushed_totals"
HARVEST_NIGHTLY_DAYS = 7


class QtcReconciliationRun(models.Model):
    """PSA approved billable items vs Odoo's timesheets and delivered
    quantities, item by item: hours for time, amount for expenses, presence
    for milestones. Harvest is read through its API; a push PSA sends its
    items to the signed reconciliation totals endpoint, which queues the run.
    """

    _inherit = "qtc.reconciliation.run"

    kind = fields.Selection(
        selection_add=[
            (KIND_HARVEST, "Harvest approved items vs timesheets"),
            (KIND_PUSHED, "PSA reported items vs timesheets"),
        ],
        ondelete={KIND_HARVEST: "cascade", KIND_PUSHED: "cascade"},
    )

    @api.model
    def _qtc_kinds_for(self, backend):
        kinds = super()._qtc_kinds_for(backend)
        if backend.provider == const.PROVIDER_HARVEST:
            kinds = [*kinds, (KIND_HARVEST, HARVEST_NIGHTLY_DAYS)]
        # A push PSA's runs are queued by its own call to the totals endpoint
        # (``_psa_run_from_totals``), never on a schedule or by hand.
        return kinds

    @api.model
    def _psa_run_from_totals(self, backend, event):
        """Queue the reconciliation a push PSA asked for (event job).

        :returns: a short result text for the event
        :raises BusinessError: the stored body is not valid totals
        """
        try:
            totals = psa_reconciliation.parse_totals(event._qtc_payload_json())
        except (ValueError, psa_reconciliation.TotalsError) as exc:
            raise BusinessError(
                _("Reconciliation totals of event %s are invalid.", event.external_id),
                category="data",
                problems=list(getattr(exc, "problems", [str(exc)])),
            ) from None
        run = self._qtc_request(
            backend, KIND_PUSHED, totals.date_from, totals.date_to, event=event
        )
        return f"reconciliation {run.id} queued ({len(totals.facts)} item(s))"

    # ------------------------------------------------------------- sides

    def _qtc_reconcile_sides(self):
        if self.kind == KIND_HARVEST:
            facts = self._psa_harvest_facts()
            name = "Harvest"
        elif self.kind == KIND_PUSHED:
            facts = self._psa_pushed_facts()
            name = self.backend_id.name
        else:
            return super()._qtc_reconcile_sides()
        external = [self._psa_fact_entry(fact) for fact in facts]
        return external, self._psa_odoo_entries(), {"external_name": name}

    def _psa_harvest_facts(self):
        backend = self.backend_id
        params = urlencode(
            {
                "from": self.date_from.isoformat(),
                "to": self.date_to.isoformat(),
                "per_page": const.HARVEST_PER_PAGE,
            }
        )
        entries, expenses = [], []
        for resource, target in (("time_entries", entries), ("expenses", expenses)):
            url = f"{const.HARVEST_API_URL}/v2/{resource}?{params}"
            for page in harvest.iter_pages(backend._harvest_get_json, url):
                target.extend(page.data.get(resource) or [])
        return [
            *psa_reconciliation.harvest_time_facts(
                entries, use_rounded_hours=backend.harvest_use_rounded_hours
            ),
            *psa_reconciliation.harvest_expense_facts(
                expenses, backend.company_id.currency_id.name
            ),
        ]

    def _psa_pushed_facts(self):
        if not self.event_id:
            raise BusinessError(
                _("This reconciliation has no totals pushed by the PSA."),
                category="configuration",
            )
        try:
            payload = json.loads(self.event_id.payload or "")
            return list(psa_reconciliation.parse_totals(payload).facts)
        except (ValueError, psa_reconciliation.TotalsError) as exc:
            raise BusinessError(
                _("The pushed totals cannot be read."),
                category="data",
                problems=[str(exc)],
            ) from None

    def _psa_fact_entry(self, fact):
        return Entry(
            key=fact.external_id,
            label=fact.label,
            amount=fact.amount,
            currency=fact.currency,
            quantity=fact.hours
            if fact.kind == wi.KIND_TIME
            else (Decimal(1) if fact.kind == wi.KIND_MILESTONE else None),
            day=fact.day,
        )

    def _psa_odoo_entries(self):
        """The backend's approved billable items of the window with what
        Odoo delivered for them: timesheet hours, the expense's re-invoiced
        amount, the milestone's unit. One query."""
        self.env["qtc.psa.item"].flush_model()
        self.env["account.analytic.line"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """
                SELECT i.id, i.external_id, i.kind, i.date, i.quantity,
                       aal.unit_amount, -aal.amount, cur.name, i.analytic_line_id,
                       i.sale_line_id
                  FROM qtc_psa_item i
             LEFT JOIN account_analytic_line aal ON aal.id = i.analytic_line_id
             LEFT JOIN sale_order_line sol ON sol.id = i.sale_line_id
             LEFT JOIN res_currency cur ON cur.id = sol.currency_id
                 WHERE i.backend_id = %s AND i.status = %s AND i.billable
                   AND i.date BETWEEN %s AND %s
                """,
                self.backend_id.id,
                wi.STATUS_APPROVED,
                self.date_from,
                self.date_to,
            )
        )
        entries = []
        for (
            item_id,
            external_id,
            kind,
            day,
            quantity,
            hours,
            amount,
            currency,
            line_id,
            sale_line_id,
        ) in rows:
            if kind == wi.KIND_TIME:
                label = _("timesheet of item %s", external_id)
                values = {"quantity": Decimal(str(hours or 0)) if line_id else 0}
            elif kind == wi.KIND_EXPENSE:
                label = _("re-invoiced expense %s", external_id)
                values = {
                    "amount": Decimal(str(amount or 0)) if line_id else Decimal(0),
                    "currency": currency,
                }
            else:
                label = _("milestone %s delivered", external_id)
                values = {
                    "quantity": Decimal(str(quantity or 0)) if sale_line_id else 0
                }
            entries.append(
                Entry(
                    key=external_id,
                    label=label,
                    day=day,
                    record=("qtc.psa.item", item_id),
                    **values,
                )
            )
        return entries
