import json

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.access import check_action
from odoo.addons.qtc_connector_base.exceptions import BusinessError
from odoo.addons.qtc_connector_base.lib.job_function import job_function
from odoo.addons.qtc_tax import const as tax_const
from odoo.addons.qtc_tax.lib import cache
from odoo.addons.qtc_tax.lib.engine import TaxEngineRejected, TaxEngineUnavailable
from odoo.exceptions import UserError

ORDER_TAX_STATES = [
    ("none", "Not quoted"),
    ("quoted", "Quoted"),
    ("pending", "Pending (engine unavailable)"),
    ("fallback", "Odoo's taxes (engine unavailable)"),
]


class SaleOrder(models.Model):
    """Sale orders quoted by the company's tax engine on demand.

    A quote is an engine ``SalesOrder`` transaction: never recorded, so nothing
    is committed or voided for an order. Its answer is applied like an
    invoice's: one ``account.tax`` per jurisdiction rate on the lines, and the
    engine's amount per tax fed to Odoo's tax totals (as the tax lines an
    invoice carries), so the order's tax total equals the engine's to the cent.
    Those amounts hold while the lines stay as quoted; a line changed since
    shows Odoo's own computation of the same taxes until the next quote.

    An outage never stands in the way of the sale: the quote button reports it
    without an error, the order stays editable and can be confirmed, and the
    invoices made from it are quoted again when they are posted. Under the
    backend's "hold" policy the order is flagged tax pending with an exception
    and re-quoted by a job when the engine answers; under "fallback" it keeps
    Odoo's configured taxes.
    """

    # Quotes and re-quote jobs are traced on the order: traceable.
    _name = "sale.order"
    _inherit = ["sale.order", "qtc.tax.document", "qtc.trace.mixin"]

    tax_state = fields.Selection(
        ORDER_TAX_STATES,
        string="Tax engine status",
        default="none",
        required=True,
        copy=False,
        tracking=True,
    )
    tax_engine_total = fields.Monetary(
        string="Engine tax total", copy=False, readonly=True
    )
    tax_engine_amounts = fields.Text(
        copy=False,
        readonly=True,
        help="What the last quote applied (JSON): each line's amount and taxes, "
        "and the engine's amount per tax.",
    )
    tax_quote_current = fields.Boolean(
        string="Engine quote up to date",
        compute="_compute_tax_quote_current",
        help="The lines are as they were quoted: the totals are the engine's.",
    )

    @api.depends(
        "tax_state",
        "tax_engine_amounts",
        "order_line.price_unit",
        "order_line.product_uom_qty",
        "order_line.discount",
        "order_line.tax_id",
    )
    def _compute_tax_quote_current(self):
        for order in self:
            order.tax_quote_current = order._tax_engine_tax_lines() is not None

    # ------------------------------------------------------------ totals

    @api.depends("tax_state", "tax_engine_amounts")
    def _compute_amounts(self):
        quoted = self.filtered(lambda order: order._tax_engine_tax_lines() is not None)
        super(SaleOrder, self - quoted)._compute_amounts()
        for order in quoted:
            tax_totals = order._tax_totals_with_engine_amounts()
            order.amount_untaxed = tax_totals["base_amount_currency"]
            order.amount_tax = tax_totals["tax_amount_currency"]
            order.amount_total = tax_totals["total_amount_currency"]

    @api.depends("tax_state", "tax_engine_amounts")
    def _compute_tax_totals(self):
        quoted = self.filtered(lambda order: order._tax_engine_tax_lines() is not None)
        super(SaleOrder, self - quoted)._compute_tax_totals()
        for order in quoted:
            order.tax_totals = order._tax_totals_with_engine_amounts()

    def _tax_totals_with_engine_amounts(self):
        """Odoo's tax totals of the order, each engine tax at the engine's
        amount: the amounts go in as the tax lines an invoice would carry,
        which Odoo's rounding step honours like a tax amount edited on a bill."""
        self.ensure_one()
        taxes_model = self.env["account.tax"]
        order_lines = self.order_line.filtered(lambda line: not line.display_type)
        base_lines = [
            line._prepare_base_line_for_taxes_computation() for line in order_lines
        ]
        taxes_model._add_tax_details_in_base_lines(base_lines, self.company_id)
        taxes_model._round_base_lines_tax_details(
            base_lines, self.company_id, tax_lines=self._tax_engine_tax_lines()
        )
        return taxes_model._get_tax_totals_summary(
            base_lines=base_lines,
            currency=self.currency_id or self.company_id.currency_id,
            company=self.company_id,
        )

    def _tax_line_signature(self, line):
        """What a line was quoted with: its amount as sent, and its taxes."""
        return [
            cache.decimal_text(self._tax_line_amount(line)),
            sorted(line.tax_id.ids),
        ]

    def _tax_engine_tax_lines(self):
        """The engine's amounts as tax lines for Odoo's totals, or ``None``
        when the order is not quoted or its lines changed since the quote."""
        self.ensure_one()
        if self.tax_state != "quoted" or not self.tax_engine_amounts:
            return None
        try:
            applied = json.loads(self.tax_engine_amounts)
        except ValueError:
            return None
        current = {
            str(line._origin.id): self._tax_line_signature(line)
            for line in self._tax_base_lines()
        }
        if current != applied.get("lines"):
            return None
        currency = self.currency_id or self.company_id.currency_id
        rate = self.currency_rate or 1.0
        tax_lines = []
        for tax_id, amount_text in (applied.get("taxes") or {}).items():
            tax = self.env["account.tax"].browse(int(tax_id)).exists()
            repartition = tax.invoice_repartition_line_ids.filtered(
                lambda rep: rep.repartition_type == "tax"
            )[:1]
            if not repartition:
                return None
            amount = float(amount_text)
            tax_lines.append(
                {
                    "tax_repartition_line_id": repartition,
                    "sign": 1.0,
                    "currency_id": currency,
                    "amount_currency": amount,
                    "balance": self.company_id.currency_id.round(amount / rate),
                }
            )
        return tax_lines

    # ----------------------------------------------------------- actions

    def action_tax_quote(self):
        """Quote the order now and apply the engine's taxes.

        An engine outage is reported, not raised: the order stays as it is
        (editable, confirmable) and follows the backend's outage policy. A
        rejection names the fields to fix.

        :raises AccessError: not a salesman who may edit the orders
        """
        check_action(self, tax_const.SALES_GROUP, "write", _("quote an order's taxes"))
        outages = []
        for order in self:
            if order.state == "cancel" or not order._tax_applies():
                raise UserError(
                    _(
                        "%(order)s is not an open order with an active tax engine.",
                        order=order.display_name,
                    )
                )
            if order.locked:
                # Odoo forbids changing a locked order's taxes; say so before
                # asking the engine rather than fail on the line write.
                raise UserError(
                    _(
                        "%(order)s is locked: unlock it to quote its taxes again; "
                        "its invoices are quoted when they are posted.",
                        order=order.display_name,
                    )
                )
            try:
                order._tax_quote()
            except TaxEngineUnavailable as exc:
                order._tax_outage(exc)
                outages.append(order)
                continue
            except TaxEngineRejected as exc:
                raise order._tax_rejected_error(exc) from None
            order._tax_quoted()
        if not outages:
            return True
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Tax engine unavailable"),
                "message": _(
                    "Not quoted: %(names)s. The order can still be edited and "
                    "confirmed; its invoices are quoted when they are posted.",
                    names=", ".join(order.display_name for order in outages),
                ),
                "type": "warning",
                "sticky": False,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    # ---------------------------------------------------------- documents

    def _tax_base_lines(self):
        return self.order_line.filtered(
            lambda line: not line.display_type and not line.is_downpayment
        )

    def _tax_line_quantity(self, line):
        return line.product_uom_qty

    def _tax_line_fields(self):
        return "order_line", "tax_id"

    def _tax_document_date(self):
        if self.date_order:
            return fields.Date.context_today(self, self.date_order)
        return fields.Date.context_today(self)

    def _tax_quote_code(self):
        # Stable while the order is renamed or revised: the cache key with it.
        return f"ODOO-SO-{self.id}"

    def _tax_job_key(self, kind):
        return f"qtc_tax_sale:{kind}:{self.id}"

    def _tax_apply(self, result):
        """Put the engine's taxes on the lines and keep its amount per tax for
        the totals.

        :raises TaxEngineUnavailable: the answer misses a line (unusable)
        :raises UserError: the totals still differ (never expected)
        """
        self.ensure_one()
        expected = self._tax_apply_engine_taxes(result)
        self.tax_engine_amounts = json.dumps(
            {
                "lines": {
                    str(line.id): self._tax_line_signature(line)
                    for line in self._tax_base_lines()
                },
                "taxes": {
                    str(tax_id): cache.decimal_text(amount)
                    for tax_id, amount in expected.items()
                },
            }
        )
        # The check reads the totals with the quote in force.
        self.tax_state = "quoted"
        self._tax_check_total(result)

    # ------------------------------------------------------------ outages

    def _tax_quoted(self):
        self.ensure_one()
        if self.tax_retry_count:
            self.tax_retry_count = 0
        self._tax_resolve_exception(_("Quoted once the engine answered."))

    def _tax_outage(self, error):
        """Follow the backend's outage policy for an order the engine could
        not quote: "hold" flags it pending with an exception and a job that
        quotes it when the engine answers; "fallback" keeps Odoo's taxes."""
        self.ensure_one()
        backend_sudo = self._tax_backend_sudo()
        if backend_sudo.tax_outage_policy == "fallback":
            self.tax_state = "fallback"
            self.message_post(
                body=_(
                    "Tax engine unavailable (%(reason)s): the order keeps the taxes "
                    "on its lines; its invoices are quoted when they are posted.",
                    reason=error.message,
                )
            )
            return
        self._tax_wait_for_engine(
            "quote",
            "_tax_job_quote",
            BusinessError(
                _(
                    "%(order)s is not quoted: the tax engine is unavailable.",
                    order=self.display_name,
                ),
                category="tax",
                severity="low",
                problems=[error.message],
                records=[(self._name, self.id)],
                suggested_action=_(
                    "Nothing to do: the order is quoted as soon as the engine "
                    "answers, and can be confirmed meanwhile; its invoices are "
                    "quoted when they are posted."
                ),
            ),
            _(
                "Not quoted: the tax engine is unavailable (%(reason)s). It will "
                "be quoted when the engine answers.",
                reason=error.message,
            ),
        )

    @job_function
    def _tax_job_quote(self):
        """Job: quote an order the engine could not quote before."""
        self.ensure_one()
        if self.tax_state != "pending" or self.state == "cancel":
            return "nothing to do: the order is no longer pending"
        if self.invoice_ids:
            self._tax_resolve_exception(_("Invoiced: the invoices are quoted."))
            return "nothing to do: invoiced, the invoices are quoted when posted"
        if self.locked:
            # Its taxes cannot change any more; its invoices are quoted.
            self._tax_resolve_exception(_("Locked: the invoices are quoted."))
            return "nothing to do: locked, the invoices are quoted when posted"
        try:
            self._tax_quote()
        except TaxEngineUnavailable as exc:
            return self._tax_reschedule("quote", "_tax_job_quote", exc)
        except TaxEngineRejected as exc:
            raise self._tax_rejected_error(exc) from None
        self._tax_quoted()
        return f"quoted {self.name}"
