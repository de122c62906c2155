from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.exceptions import HttpBusinessError
from odoo.addons.qtc_connector_base.lib import reconcile
from odoo.addons.qtc_connector_base.lib.reconcile import Entry

from .. import const
from ..lib import money

KIND = "stripe_balance"
# Balance transaction types that must be recorded in Odoo, and the binding
# that records them.
BINDING_BY_TYPE = {
    "charge": const.BINDING_CHARGE,
    "payment": const.BINDING_CHARGE,
    "refund": const.BINDING_REFUND,
    "payout": const.BINDING_PAYOUT,
}


class QtcReconciliationRun(models.Model):
    """Stripe balance transactions vs the payments, refunds and payouts Odoo
    recorded from them, over UTC days (the connector's daily check, run by
    its own cron for yesterday, or by hand over any window)."""

    _inherit = "qtc.reconciliation.run"

    kind = fields.Selection(
        selection_add=[(KIND, "Stripe balance vs payments")],
        ondelete={KIND: "cascade"},
    )

    @api.model
    def _qtc_kinds_for(self, backend):
        kinds = super()._qtc_kinds_for(backend)
        if backend.provider == "stripe":
            # Scheduled by the connector's own daily cron (one day at a time).
            kinds = [*kinds, (KIND, 0)]
        return kinds

    @api.model
    def _stripe_run_day(self, backend, day):
        """Reconcile one UTC day now, in the caller's job, and return the run
        (the daily cron's job, ``qtc.backend._stripe_reconcile_day``)."""
        # Named boundary, as in ``_qtc_request``: the run is the system's.
        run_sudo = self.sudo().create(
            {
                "kind": KIND,
                "backend_id": backend.id,
                "date_from": day,
                "date_to": day,
                "requested_by_id": self.env.uid,
            }
        )
        run_sudo._qtc_reconcile_execute()
        return run_sudo

    def _qtc_reconcile_sides(self):
        if self.kind != KIND:
            return super()._qtc_reconcile_sides()
        backend = self.backend_id
        start = datetime.combine(self.date_from, time.min, tzinfo=UTC)
        end = datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=UTC)
        params = {
            "created[gte]": int(start.timestamp()),
            "created[lt]": int(end.timestamp()),
            "limit": const.LIST_PAGE_SIZE,
        }
        read = 0
        external, odoo = [], []
        while True:
            page = backend._stripe_api("GET", "/v1/balance_transactions", params=params)
            rows = page.get("data") or []
            for txn in rows:
                read += 1
                self._stripe_add_transaction(backend, txn, external, odoo)
            if not page.get("has_more") or not rows:
                break
            params = {**params, "starting_after": rows[-1]["id"]}
        odoo.extend(self._stripe_unlisted_payments(backend, {e.key for e in external}))
        mismatches = len(reconcile.compare(external, odoo).differences)
        return (
            external,
            odoo,
            {
                "external_name": "Stripe",
                "summary": _(
                    "%(checked)s balance transactions checked, %(mismatches)s "
                    "mismatches.",
                    checked=read,
                    mismatches=mismatches,
                ),
            },
        )

    def _stripe_add_transaction(self, backend, txn, external, odoo):
        """Add one balance transaction (and the Odoo record bound to its
        source, if any) to the two sides."""
        kind = txn.get("type")
        source = txn.get("source")
        source_id = source.get("id") if isinstance(source, dict) else source
        binding_type = BINDING_BY_TYPE.get(kind)
        if not binding_type or not source_id:
            return
        record = backend._stripe_bound(binding_type, source_id)
        if kind == "refund" and not record:
            # A refund booked from a cumulative total has no refund id bound.
            return
        currency = money.normalize_currency(txn.get("currency") or "")
        amount = None
        if isinstance(txn.get("amount"), int) and currency:
            amount = abs(money.to_major(txn["amount"], currency))
        created = txn.get("created")
        day = (
            datetime.fromtimestamp(created, UTC).date()
            if isinstance(created, int)
            else self.date_from
        )
        external.append(
            Entry(
                key=source_id,
                label=f"{kind} {source_id} ({txn.get('id')})",
                amount=amount,
                currency=currency or None,
                day=day,
                external_ref=("balance_transaction", txn.get("id")),
            )
        )
        if not record:
            return
        same_currency = (
            record._name == "account.payment" and record.currency_id.name == currency
        )
        odoo.append(
            Entry(
                key=source_id,
                label=record.display_name,
                # Converted by Stripe (another currency): amounts differ by
                # design, only presence is compared.
                amount=Decimal(str(record.amount)) if same_currency else None,
                currency=currency if same_currency else None,
                day=day,
                record=(record._name, record.id),
            )
        )

    def _stripe_unlisted_payments(self, backend, listed):
        """Odoo payments of the window bound to a Stripe charge that Stripe did
        not list: each charge is read back, and stays a difference unless
        Stripe has it on another day (that day's run compares it)."""
        bindings = self.env["qtc.binding"].search(
            [
                ("backend_id", "=", backend.id),
                ("external_type", "=", const.BINDING_CHARGE),
                ("res_model", "=", "account.payment"),
                ("external_id", "not in", list(listed)),
            ]
        )
        payments = self.env["account.payment"].search(
            [
                ("id", "in", bindings.mapped("res_id")),
                ("date", ">=", self.date_from),
                ("date", "<=", self.date_to),
            ]
        )
        by_id = {payment.id: payment for payment in payments}
        entries = []
        for binding in bindings.filtered(lambda b: b.res_id in by_id):
            payment = by_id[binding.res_id]
            try:
                charge = backend._stripe_api(
                    "GET", f"/v1/charges/{binding.external_id}"
                )
            except HttpBusinessError as exc:
                if exc.status != 404:
                    raise
                charge = None
            created = charge.get("created") if charge else None
            if isinstance(created, int):
                day = datetime.fromtimestamp(created, UTC).date()
                if not self.date_from <= day <= self.date_to:
                    continue
            entries.append(
                Entry(
                    key=binding.external_id,
                    label=payment.display_name,
                    amount=Decimal(str(payment.amount)),
                    currency=payment.currency_id.name,
                    day=payment.date,
                    record=("account.payment", payment.id),
                )
            )
        return entries

    def _qtc_difference_title(self, difference, external_name):
        if self.kind != KIND:
            return super()._qtc_difference_title(difference, external_name)
        theirs, ours = difference.external, difference.odoo
        if difference.kind == reconcile.MISSING_IN_ODOO:
            return _(
                "Stripe %(what)s is not recorded in Odoo.",
                what=theirs.label,
            )
        if difference.kind == reconcile.MISSING_EXTERNALLY:
            return _(
                "Odoo payment %(payment)s records Stripe charge %(charge)s, which "
                "Stripe does not list.",
                payment=ours.label,
                charge=difference.key,
            )
        return _(
            "Stripe %(what)s is %(amount)s %(currency)s but %(payment)s is %(odoo)s.",
            what=theirs.label,
            amount=theirs.amount,
            currency=theirs.currency,
            payment=ours.label,
            odoo=ours.amount,
        )
