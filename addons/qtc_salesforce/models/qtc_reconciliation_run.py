from decimal import Decimal

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.addons.qtc_connector_base.lib.reconcile import Entry

from .. import const
from ..lib import reconciliation as sf_reconciliation
from ..lib import soql

KIND = "salesforce_won_orders"
# Nightly window: a deal's CloseDate is often set in the past when it is won.
NIGHTLY_DAYS = 30


class QtcReconciliationRun(models.Model):
    """Salesforce won deals vs Odoo's confirmed orders over a window of close
    dates: count, amount (untaxed) and currency, deal by deal."""

    _inherit = "qtc.reconciliation.run"

    kind = fields.Selection(
        selection_add=[(KIND, "Salesforce won deals vs confirmed orders")],
        ondelete={KIND: "cascade"},
    )

    @api.model
    def _qtc_kinds_for(self, backend):
        kinds = super()._qtc_kinds_for(backend)
        if backend.provider == const.PROVIDER:
            kinds = [*kinds, (KIND, NIGHTLY_DAYS)]
        return kinds

    def _qtc_reconcile_sides(self):
        if self.kind != KIND:
            return super()._qtc_reconcile_sides()
        backend = self.backend_id
        currency = backend.company_id.currency_id.name
        try:
            query = sf_reconciliation.won_in_window_query(
                self.date_from,
                self.date_to,
                backend.salesforce_opportunity_filter
                or soql.DEFAULT_OPPORTUNITY_FILTER,
            )
        except soql.SoqlError as exc:
            raise BusinessError(
                _("The backend's opportunity filter cannot be used: %s", exc),
                category="configuration",
            ) from None
        deals = {
            deal.id: deal
            for deal in (
                sf_reconciliation.read_deal(record, currency)
                for record in backend._salesforce_query(query)
            )
        }
        orders = self._salesforce_bound_orders(deals)
        unknown = [key for key in orders if key not in deals]
        for query in sf_reconciliation.by_ids_queries(unknown):
            for record in backend._salesforce_query(query):
                deal = sf_reconciliation.read_deal(record, currency)
                if (
                    deal.is_won
                    and deal.close_date
                    and not (self.date_from <= deal.close_date <= self.date_to)
                ):
                    # Won, but closed in another window: its run compares it.
                    orders.pop(deal.id, None)
        external = [self._salesforce_deal_entry(deal) for deal in deals.values()]
        odoo = [
            self._salesforce_order_entry(key, order, deals.get(key))
            for key, order in orders.items()
        ]
        return external, odoo, {"external_name": "Salesforce"}

    def _salesforce_bound_orders(self, deals):
        """``{opportunity id: sale.order}``: the confirmed orders bound to the
        window's deals, and those confirmed in the window whatever their deal
        (a deal no longer won shows up as missing in Salesforce)."""
        bindings = self.env["qtc.binding"]
        domain = [
            ("backend_id", "=", self.backend_id.id),
            ("external_type", "=", const.BINDING_OPPORTUNITY),
            ("res_model", "=", "sale.order"),
        ]
        in_window = self.env["sale.order"].search(
            [
                ("company_id", "=", self.backend_id.company_id.id),
                ("state", "in", ("sale", "done")),
                ("date_order", ">=", fields.Datetime.to_datetime(self.date_from)),
                (
                    "date_order",
                    "<",
                    fields.Datetime.to_datetime(fields.Date.add(self.date_to, days=1)),
                ),
            ]
        )
        found = bindings.search(
            [*domain, ("external_id", "in", list(deals))]
        ) | bindings.search([*domain, ("res_id", "in", in_window.ids)])
        orders = self.env["sale.order"].browse(found.mapped("res_id")).exists()
        confirmed = {
            order.id: order for order in orders if order.state in ("sale", "done")
        }
        return {
            binding.external_id: confirmed[binding.res_id]
            for binding in found
            if binding.res_id in confirmed
        }

    def _salesforce_deal_entry(self, deal):
        return Entry(
            key=deal.id,
            label=_(
                "won deal %(name)s (%(id)s), closed %(date)s",
                name=deal.name,
                id=deal.id,
                date=deal.close_date or "?",
            ),
            amount=deal.amount if deal.amount is not None else Decimal(0),
            currency=deal.currency,
            day=deal.close_date,
            external_ref=(const.BINDING_OPPORTUNITY, deal.id),
        )

    def _salesforce_order_entry(self, key, order, deal):
        return Entry(
            key=key,
            label=_("confirmed order %s", order.name),
            amount=Decimal(str(order.amount_untaxed)),
            currency=order.currency_id.name,
            day=(deal and deal.close_date) or order.date_order.date(),
            record=("sale.order", order.id),
        )
