from decimal import Decimal

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.exceptions import BusinessError, RetryableError
from odoo.addons.qtc_connector_base.lib.reconcile import Entry
from odoo.tools import SQL

from .. import const
from ..lib import avatax, avatax_listing
from ..lib.avatax_engine import NoAnswer
from ..lib.engine import TaxEngineUnavailable

KIND_AVATAX = "tax_avatax_committed"
KIND_RATE_TABLE = "tax_rate_table_committed"
NIGHTLY_DAYS = 7
MAX_PAGES = 1000


class QtcReconciliationRun(models.Model):
    """Tax engine committed documents vs Odoo's posted invoices and credit
    notes over a window of invoice dates: one document per code, its tax
    total and currency.

    AvaTax is read through its transaction list for the backend's company
    code; the rate table records nothing itself, so its side is the commits
    Odoo recorded from it on the invoices (code and engine tax total).
    """

    _inherit = "qtc.reconciliation.run"

    kind = fields.Selection(
        selection_add=[
            (KIND_AVATAX, "AvaTax committed documents vs posted invoices"),
            (KIND_RATE_TABLE, "Rate table commits vs posted invoices"),
        ],
        ondelete={KIND_AVATAX: "cascade", KIND_RATE_TABLE: "cascade"},
    )

    @api.model
    def _qtc_kinds_for(self, backend):
        kinds = super()._qtc_kinds_for(backend)
        if backend.provider == "avatax":
            kinds = [*kinds, (KIND_AVATAX, NIGHTLY_DAYS)]
        elif backend.provider == "tax_rate_table":
            kinds = [*kinds, (KIND_RATE_TABLE, NIGHTLY_DAYS)]
        return kinds

    def _qtc_reconcile_sides(self):
        if self.kind == KIND_AVATAX:
            external = [
                self._tax_listed_entry(txn)
                for txn in self._tax_avatax_transactions()
                if txn.committed
            ]
            name = "AvaTax"
        elif self.kind == KIND_RATE_TABLE:
            external = self._tax_rate_table_commits()
            name = _("Rate table commits")
        else:
            return super()._qtc_reconcile_sides()
        return external, self._tax_posted_entries(), {"external_name": name}

    # --------------------------------------------------------------- AvaTax

    def _tax_avatax_transactions(self):
        backend = self.backend_id
        company_code = backend.avatax_company_code
        account_id = backend.avatax_account_id
        license_key = backend._qtc_get_secret("avatax_license_key", required=False)
        if not (company_code and account_id and license_key):
            raise BusinessError(
                _("AvaTax backend %s is not fully configured.", backend.name),
                category="configuration",
                records=[("qtc.backend", backend.id)],
            )
        send = backend._avatax_transport(account_id, license_key)
        path = avatax_listing.list_path(company_code)
        transactions, skip = [], 0
        for _page in range(MAX_PAGES):
            params = avatax_listing.list_params(self.date_from, self.date_to, skip)
            try:
                reply = send("GET", path, params=params)
            except NoAnswer as exc:
                raise RetryableError(f"AvaTax did not answer: {exc.reason}") from None
            if reply.status >= 400:
                error = avatax.parse_error(reply.status, reply.body, reply.headers)
                if isinstance(error, TaxEngineUnavailable):
                    raise RetryableError(error.message, delay=error.retry_after)
                raise BusinessError(
                    _("AvaTax refused the transaction list: %s", error.message),
                    category="configuration",
                    problems=[error.message],
                )
            try:
                page, more = avatax_listing.parse_page(reply.body)
            except ValueError as exc:
                raise RetryableError(f"unreadable transaction list: {exc}") from None
            transactions.extend(page)
            skip += len(page)
            if not more:
                return transactions
        raise BusinessError(
            _(
                "AvaTax listed more than %s pages; reconcile a shorter window.",
                MAX_PAGES,
            ),
            category="configuration",
        )

    def _tax_listed_entry(self, txn):
        return Entry(
            key=txn.code,
            label=_(
                "%(type)s %(code)s of %(date)s, %(total)s taxable",
                type=txn.type,
                code=txn.code,
                date=txn.day or "?",
                total=txn.total_amount,
            ),
            amount=abs(txn.total_tax) if txn.total_tax is not None else None,
            currency=txn.currency,
            day=txn.day,
        )

    # ----------------------------------------------------------- rate table

    def _tax_rate_table_commits(self):
        """The commits recorded on invoices of the window, whatever the
        invoice became since (one cancelled without a void is a difference)."""
        self.env["account.move"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """
                SELECT m.tax_document_code, m.tax_engine_total, c.name,
                       m.invoice_date, m.move_type
                  FROM account_move m
                  JOIN res_currency c ON c.id = m.currency_id
                 WHERE m.tax_backend_id = %s AND m.tax_state = 'committed'
                   AND m.tax_document_code IS NOT NULL
                   AND m.invoice_date BETWEEN %s AND %s
                """,
                self.backend_id.id,
                self.date_from,
                self.date_to,
            )
        )
        return [
            Entry(
                key=code,
                label=self.env._("commit %(code)s of %(date)s", code=code, date=day),
                amount=abs(Decimal(str(total or 0))),
                currency=currency,
                day=day,
            )
            for code, total, currency, day, _move_type in rows
        ]

    # ----------------------------------------------------------------- Odoo

    def _tax_posted_entries(self):
        """Posted invoices and credit notes of the window taxed by this
        backend, keyed by the code they are (or would be) committed under."""
        self.env["account.move"].flush_model()
        rows = self.env.execute_query(
            SQL(
                """
                SELECT m.id, COALESCE(m.tax_document_code, m.name), m.name,
                       m.amount_tax, c.name, m.invoice_date
                  FROM account_move m
                  JOIN res_currency c ON c.id = m.currency_id
                 WHERE m.tax_backend_id = %s AND m.state = 'posted'
                   AND m.move_type IN %s
                   AND m.invoice_date BETWEEN %s AND %s
                """,
                self.backend_id.id,
                const.TAXED_MOVE_TYPES,
                self.date_from,
                self.date_to,
            )
        )
        return [
            Entry(
                key=code,
                label=self.env._("posted %s", name),
                amount=abs(Decimal(str(amount_tax or 0))),
                currency=currency,
                day=day,
                record=("account.move", move_id),
            )
            for move_id, code, name, amount_tax, currency, day in rows
        ]
