"""The Stripe provider of ``qtc.backend``: webhook hooks and the applier.

An event's job calls ``_qtc_handle_event``: ``lib/mapper.py`` turns the Stripe
event into typed changes, and one ``_stripe_apply_<change>`` method per change
type writes them into the books. Every write is idempotent through bindings:

- a payment is bound under its payment key (the PaymentIntent id), so the
  ``payment_intent.succeeded``, ``checkout.session.completed`` and
  ``invoice.paid`` of the same money register it once;
- refunds keep a ledger on the refunded payment and book only the difference
  between what Stripe says was refunded and what is already booked;
- disputes keep the time of the last event applied, so a stale event never
  overwrites a newer state; payouts and fees are bound by their Stripe id.

What cannot be applied becomes a retry (the payment a refund or dispute refers
to has not arrived yet) or an exception for finance (unapplied cash,
overpayment, missing credit note), never a webhook failure.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.exceptions import (
    BusinessError,
    HttpBusinessError,
    RetryableError,
)
from odoo.addons.qtc_connector_base.lib import backoff
from odoo.addons.qtc_connector_base.lib import signature as qtc_signature
from odoo.addons.qtc_connector_base.lib.job_function import job_function
from odoo.addons.qtc_connector_base.models.qtc_backend import (
    BUSINESS_ERRORS,
    MANAGER_GROUP,
)
from odoo.tools import float_repr

from .. import const
from ..applier import StripeBatch
from ..lib import mapper, matching, money
from ..lib import resources as stripe_resources
from ..lib import signature as stripe_signature

# Stripe event ids, as they appear in a path (nothing else may).
_EVENT_ID_RE = re.compile(r"^evt_[A-Za-z0-9]{1,250}$")


def _naive_utc(moment):
    """An aware datetime as the naive UTC value Odoo stores."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


def _to_decimal(amount, currency):
    """An Odoo float amount as an exact ``Decimal`` with the currency's decimals."""
    return Decimal(float_repr(currency.round(amount), currency.decimal_places))


class QtcBackend(models.Model):
    _inherit = "qtc.backend"

    provider = fields.Selection(
        selection_add=[("stripe", "Stripe")], ondelete={"stripe": "set default"}
    )
    stripe_api_key = fields.Char(
        string="Stripe secret key",
        qtc_secret="stripe_api_key",  # noqa: S106 - the credential name
        compute="_compute_qtc_secrets",
        inverse="_inverse_qtc_secrets",
        groups=MANAGER_GROUP,
        help="Write-only. A secret (sk_...) or restricted (rk_...) key with read "
        "access to charges, balance transactions and payouts, and write access "
        "to customers and Checkout Sessions for payment links.",
    )
    stripe_journal_id = fields.Many2one(
        "account.journal",
        string="Stripe balance journal",
        domain="[('type', '=', 'bank'), ('company_id', '=', company_id)]",
        help="Bank-type journal standing for the Stripe balance: customer "
        "payments and refunds are booked here.",
    )
    stripe_bank_journal_id = fields.Many2one(
        "account.journal",
        string="Payout bank journal",
        domain="[('type', '=', 'bank'), ('company_id', '=', company_id)]",
        help="The bank account Stripe pays out to: payouts move money from the "
        "Stripe balance journal to this one.",
    )
    stripe_book_fees = fields.Boolean(
        string="Book Stripe fees",
        help="Fetch each payment's balance transaction and book Stripe's fee "
        "(needs the secret key and a fee account).",
    )
    stripe_fee_account_id = fields.Many2one(
        "account.account",
        string="Stripe fee account",
        domain="[('deprecated', '=', False)]",
        check_company=True,
    )

    # ------------------------------------------------------------------ hooks

    def _qtc_binding_models(self):
        if self.provider != "stripe":
            return super()._qtc_binding_models()
        return dict(const.BINDING_MODELS)

    def _qtc_outbound_hosts(self):
        if self.provider != "stripe":
            return super()._qtc_outbound_hosts()
        return const.OUTBOUND_HOSTS

    def _qtc_webhook_path(self):
        """Stripe's endpoint for this backend: ``/qtc/stripe/<id>/webhook``."""
        if self.provider != "stripe":
            return super()._qtc_webhook_path()
        self.ensure_one()
        return f"/qtc/stripe/{self.id}/webhook"

    def _qtc_webhook_verify(self, body, headers, config):
        """Check the ``Stripe-Signature`` header as Stripe documents it: any
        ``v1`` matching any of the backend's active signing secrets, signed
        within ``webhook_tolerance`` seconds.

        :raises qtc_signature.SignatureError: not authentic (answered 401)
        """
        if self.provider != "stripe":
            return super()._qtc_webhook_verify(body, headers, config)
        self.ensure_one()
        secrets = [secret for secret in self._qtc_webhook_secrets(config) if secret]
        if not secrets:
            raise qtc_signature.SignatureMismatch("no active signing secret configured")
        try:
            stripe_signature.verify(
                headers.get(stripe_signature.HEADER),
                body,
                secrets,
                tolerance=config.tolerance,
            )
        except stripe_signature.SignatureError as exc:
            # The base controller answers 401 to its own error class.
            raise qtc_signature.SignatureError(str(exc)) from None

    def _qtc_webhook_parse(self, body, headers):
        """One Stripe event per delivery; its ``evt_`` id is the idempotency key.

        :raises ValueError: not a JSON event object with ``id`` and ``type``
        """
        if self.provider != "stripe":
            return super()._qtc_webhook_parse(body, headers)
        self.ensure_one()
        events = super()._qtc_webhook_parse(body, headers)
        kind = json.loads(body).get("object", "event")
        if kind != "event":
            raise ValueError(f"object must be 'event', got {str(kind)[:40]!r}")
        return events

    def _qtc_event_resources(self, events):
        """The money, customer and invoice each event names (see
        ``lib/resources.py``): two events about one payment, one customer or
        one invoice are never applied at the same time."""
        if self.provider != "stripe":
            return super()._qtc_event_resources(events)
        self.ensure_one()
        found = []
        for event in events:
            try:
                data = json.loads(event.payload or "")
            except ValueError:
                data = None
            found.append(stripe_resources.event_resources(data, self.id))
        return found

    def _qtc_test_connection(self):
        """Read the Stripe balance with the secret key.

        :returns: a message naming the mode of the key
        :raises BusinessError: no key, or Stripe refused it
        """
        if self.provider != "stripe":
            return super()._qtc_test_connection()
        self.ensure_one()
        balance = self._stripe_api("GET", "/v1/balance")
        livemode = bool(balance.get("livemode"))
        mode = _("live") if livemode else _("test")
        if livemode != (self.environment == "production"):
            return _(
                "Connected to Stripe, but the key is a %(mode)s key on a "
                "%(environment)s backend.",
                mode=mode,
                environment=self.environment,
            )
        return _("Connected to Stripe (%(mode)s mode).", mode=mode)

    def _qtc_handle_event(self, event):
        """Apply one stored Stripe event.

        :returns: what was done, one sentence per change, or ``"ignored"`` for
            event types this connector does not handle
        :raises RetryableError: the payment a refund or dispute refers to has
            not been recorded yet
        :raises BusinessError: unapplied cash, overpayment, missing credit
            note, unreadable event, configuration
        """
        if self.provider != "stripe":
            return super()._qtc_handle_event(event)
        self.ensure_one()
        context = self.env.context
        if self._stripe_leads_batch(event):
            # The event's own job, run by a worker: apply other ready events
            # of this backend in the same transaction (see applier.py).
            outcome = StripeBatch(self).run(event, context["qtc_job_id"])
            if outcome is not None:
                return outcome
        try:
            data = event._qtc_payload_json()
        except ValueError as exc:
            raise BusinessError(
                _("The stored event is not JSON: %s", exc), category="data"
            ) from None
        if not mapper.is_handled(data.get("type") if isinstance(data, dict) else None):
            return "ignored"
        try:
            changes = mapper.map_event(data)
        except mapper.MappingError as exc:
            raise BusinessError(
                _("Stripe event %s cannot be read.", event.external_id),
                category="data",
                problems=list(exc.problems),
                suggested_action=_(
                    "Correct the payload and replay it, or ignore the exception."
                ),
            ) from None
        if not changes:
            return _("Nothing to apply: the event moves no money.")
        results = []
        for change in changes:
            self._stripe_check_mode(change)
            apply = getattr(self, f"_stripe_apply_{type(change).__name__}")
            results.append(apply(change))
        return "\n".join(results)

    def _qtc_replay_payload(self, event):
        """A replay reads the event again from Stripe (``GET /v1/events/{id}``
        with the backend's secret key) and applies Stripe's version, never a
        stored payload a person may have edited.

        :returns: the event as Stripe returns it (JSON text), or ``None`` when
            it cannot be read back (no secret key; an event older than Stripe
            keeps, 30 days): the stored payload is then applied, with the
            rights of the user the replay runs as
        :raises BusinessError: Stripe answers with another object than this
            event
        """
        if self.provider != "stripe":
            return super()._qtc_replay_payload(event)
        self.ensure_one()
        event_id = event.external_id or ""
        if not _EVENT_ID_RE.match(event_id) or not self._stripe_has_api_key():
            return None
        try:
            data = self._stripe_api("GET", f"/v1/events/{event_id}")
        except HttpBusinessError as exc:
            if exc.status == 404:
                return None
            raise
        if (
            not isinstance(data, dict)
            or data.get("object") != "event"
            or data.get("id") != event_id
        ):
            raise BusinessError(
                _("Stripe did not return event %s when asked for it.", event_id),
                category="remote_rejected",
            )
        return json.dumps(data)

    def _stripe_leads_batch(self, event):
        """Whether ``event`` is being applied by its own job (not by a dry
        run, a replay in a wizard or another event's batch), so that the job
        may take other ready events with it."""
        context = self.env.context
        job_id = context.get("qtc_job_id")
        if not job_id or context.get("qtc_stripe_batch"):
            return False
        job = self.env["qtc.job"].browse(job_id)
        return (
            job.method_name == "_qtc_process"
            and job.event_id == event
            and not job.kwargs  # a replay applies its event alone
        )

    def _qtc_handle_events(self, events):
        """Apply a batch job's events (stored with ``batch=True``) the volume
        way: payments in bulk, the rest one by one (see applier.py).

        :returns: ``{event id: (state, text)}``; a business error fails only
            its event, with its own exception
        :raises RetryableError: an event must wait (the base retries the job;
            the events applied meanwhile are recognised on the retry)
        """
        if self.provider != "stripe":
            return super()._qtc_handle_events(events)
        self.ensure_one()
        outcomes = StripeBatch(self).apply([(event, None) for event in events])
        result = {}
        for event in events:
            outcome = outcomes[event.id]
            if outcome.state != "failed":
                result[event.id] = (outcome.state, outcome.text)
                continue
            error = outcome.error
            if not isinstance(error, BUSINESS_ERRORS):
                raise error
            self.env["qtc.exception"]._qtc_open(
                error
                if isinstance(error, BusinessError)
                else BusinessError(str(error)),
                backend=self,
                event=event,
                correlation_id=event.correlation_id,
            )
            result[event.id] = ("failed", str(error))
        return result

    # ------------------------------------------------------------ Stripe API

    def _stripe_has_api_key(self):
        self.ensure_one()
        return bool(self._qtc_get_secret("stripe_api_key", required=False))

    def _stripe_api(self, method, path, params=None, data=None, idempotency_key=None):
        """Call the Stripe API with the backend's secret key.

        The one outbound seam of the connector: timeouts, rate limit, retries on
        429/5xx come from the base's client; every POST carries an
        ``Idempotency-Key`` so a retried job never creates an object twice.

        :param path: e.g. ``/v1/balance``
        :param data: form fields for a POST (Stripe takes form encoding)
        :returns: the decoded JSON answer
        :raises BusinessError: no key configured (category configuration)
        :raises RetryableError, HttpBusinessError: see the base's HTTP client
        :raises ValueError: a POST without an idempotency key (a bug)
        """
        self.ensure_one()
        if method.upper() == "POST" and not idempotency_key:
            raise ValueError("every POST to Stripe needs an idempotency key")
        api_key = self._qtc_get_secret("stripe_api_key")
        response = self._qtc_request(
            method,
            f"{const.API_BASE_URL}{path}",
            params=params,
            data=data,
            auth=(api_key, ""),
            headers={"Stripe-Version": const.API_VERSION},
            idempotency_key=idempotency_key,
        )
        try:
            return response.json()
        except ValueError:
            raise RetryableError(
                _("Stripe answered %s with a body that is not JSON.", path)
            ) from None

    # --------------------------------------------------------------- helpers

    def _stripe_check_mode(self, change):
        """Test-mode events never touch a production backend's books, and live
        events never land in a sandbox."""
        live_backend = self.environment == "production"
        if bool(change.livemode) != live_backend:
            raise BusinessError(
                _(
                    "A %(mode)s Stripe event reached the %(environment)s backend "
                    "%(name)s.",
                    mode=_("live") if change.livemode else _("test-mode"),
                    environment=self.environment,
                    name=self.name,
                ),
                category="configuration",
                severity="high",
                suggested_action=_(
                    "Point the Stripe endpoint of that mode to the matching "
                    "backend, then ignore this exception."
                ),
            )

    def _stripe_currency(self, code):
        currency = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("name", "=", code)], limit=1)
        )
        if not currency or not currency.active:
            raise BusinessError(
                _("Currency %s is not active in Odoo.", code),
                category="configuration",
                suggested_action=_("Activate the currency, then Retry."),
            )
        return currency

    def _stripe_journal(self, field_name="stripe_journal_id"):
        journal = self[field_name]
        if not journal:
            raise BusinessError(
                _(
                    "Backend %(name)s has no %(field)s.",
                    name=self.name,
                    field=self._fields[field_name].string,
                ),
                category="configuration",
                suggested_action=_("Set it on the backend form, then Retry."),
            )
        return journal

    def _stripe_amount(self, amount, currency):
        """The change's ``Decimal`` amount as the float Odoo stores, refusing an
        amount the Odoo currency cannot hold exactly."""
        value = float(amount)
        if _to_decimal(value, currency) != amount:
            raise BusinessError(
                _(
                    "Amount %(amount)s cannot be expressed in %(currency)s with "
                    "its %(digits)s decimal(s) in Odoo.",
                    amount=amount,
                    currency=currency.name,
                    digits=currency.decimal_places,
                ),
                category="configuration",
            )
        return value

    def _stripe_wait(self, message):
        """A ``RetryableError`` with an explicit backoff delay, for an event
        that must wait for another one (a refund for its payment).

        The delay is set here because event jobs are stored without a
        ``max_backoff``, which would make the base retry at once.
        """
        job_id = self.env.context.get("qtc_job_id")
        attempts = self.env["qtc.job"].browse(job_id).attempts if job_id else 1
        delay = backoff.delay(
            max(attempts, 1), base=const.WAIT_BASE_SECONDS, cap=const.WAIT_MAX_SECONDS
        )
        return RetryableError(message, delay=delay)

    def _stripe_trace(self, records, operation, note=None):
        self.env["qtc.trace"]._qtc_record(records, operation, note=note, backend=self)

    def _stripe_bind(self, external_type, external_id, record, updated_at=None):
        binding = self.env["qtc.binding"]._qtc_bind(
            self, external_type, external_id, record, updated_at=updated_at
        )
        # Flush now: two jobs applying the same money at once collide on the
        # binding's unique key here, and the loser's transaction rolls back.
        binding.flush_recordset()
        return binding

    def _stripe_bound(self, external_type, external_id):
        if not external_id:
            return None
        return self.env["qtc.binding"]._qtc_to_internal(
            self, external_type, external_id
        )

    def _stripe_post(self, payments):
        for payment in payments:
            if not payment.outstanding_account_id:
                # With full accounting installed a method may have no
                # outstanding account; a Stripe payment always needs its entry
                # to be reconciled with the invoice.
                payment.outstanding_account_id = payment._get_outstanding_account(
                    payment.payment_type
                )
        payments.action_post()

    def _stripe_reconcile(self, payment, moves):
        """Reconcile the payment's receivable/payable line with ``moves``'."""
        self._stripe_reconcile_many([(payment, moves)])

    def _stripe_reconcile_many(self, pairs):
        """Reconcile each payment's receivable/payable line with its moves',
        all pairs in one reconciliation plan (Odoo batches the work).

        :param pairs: ``[(account.payment, account.move recordset)]``
        """
        account_types = self.env["account.payment"]._get_valid_payment_account_types()
        plan = []
        for payment, moves in pairs:
            payment_lines = payment.move_id.line_ids.filtered(
                lambda line: (
                    line.account_id.account_type in account_types
                    and not line.reconciled
                )
            )
            for account in payment_lines.account_id:
                plan.append(
                    (payment_lines + moves.line_ids).filtered(
                        lambda line, account=account: (
                            line.account_id == account
                            and not line.reconciled
                            and line.parent_state == "posted"
                        )
                    )
                )
        if plan:
            self.env["account.move.line"]._reconcile_plan(plan)
        for payment, moves in pairs:
            if moves - payment.invoice_ids:
                moves.matched_payment_ids += payment

    def _stripe_open_exception(self, error):
        """Open an exception for finance without failing the job (the job's
        other work, such as a dispute flag, must still commit)."""
        return self.env["qtc.exception"]._qtc_open(error, backend=self)

    def _stripe_transaction(self, payment_intent_id):
        """The transaction of Odoo's own payment_stripe holding this
        PaymentIntent, if the payment module is installed and one does."""
        if not payment_intent_id or "payment.transaction" not in self.env:
            return None
        # Narrow sudo: only to read whether Odoo already recorded this money.
        return (
            self.env["payment.transaction"]
            .sudo()
            .search(
                [
                    ("provider_reference", "=", payment_intent_id),
                    ("provider_code", "=", "stripe"),
                    ("state", "in", const.TRANSACTION_LIVE_STATES),
                ],
                order="id",
                limit=1,
            )
            or None
        )

    def _stripe_find_payment(self, charge_id, payment_intent_id):
        """The Odoo record of the money a refund or dispute refers to.

        Looks the payment up by its PaymentIntent, then by its charge; with an
        API key, asks Stripe which PaymentIntent a charge belongs to.

        :returns: an ``account.payment`` (or ``payment.transaction`` recorded by
            Odoo's payment_stripe), or ``None``
        """
        found = self._stripe_bound(
            const.BINDING_PAYMENT, payment_intent_id
        ) or self._stripe_bound(const.BINDING_CHARGE, charge_id)
        if found or not charge_id or not self._stripe_has_api_key():
            return found
        charge = self._stripe_api("GET", f"/v1/charges/{charge_id}")
        intent = charge.get("payment_intent")
        intent_id = intent.get("id") if isinstance(intent, dict) else intent
        found = self._stripe_bound(const.BINDING_PAYMENT, intent_id)
        if found:
            self._stripe_bind(const.BINDING_CHARGE, charge_id, found)
        return found

    def _stripe_paid_invoices(self, record):
        """Invoices a recorded payment (or transaction) paid."""
        if record._name == "payment.transaction":
            if "invoice_ids" in record._fields:
                return record.invoice_ids
            return self.env["account.move"]
        return record.reconciled_invoice_ids | record.invoice_ids

    # -------------------------------------------------------------- payments

    def _stripe_invoice_candidates(self, change, currency, partner, target):
        """Open customer invoices the matching rule should consider.

        When the metadata names open invoices, those are all the rule looks at
        (``matching`` only falls back to the customer's or same-amount invoices
        as suggestions when the named invoice is not open), so the wider search,
        which scans every open invoice of the company by amount, is skipped:
        a payment from our own payment links costs one or two indexed lookups.
        """
        moves = self.env["account.move"]
        domain = [
            ("company_id", "=", self.company_id.id),
            ("move_type", "=", "out_invoice"),
            ("state", "=", "posted"),
            ("payment_state", "in", ("not_paid", "partial")),
        ]
        if target:
            return moves.search([*domain, ("id", "=", target.id)])
        found = moves
        if change.invoice_id:
            found |= moves.search([*domain, ("id", "=", change.invoice_id)])
        if change.invoice_ref:
            found |= moves.search([*domain, ("name", "=", change.invoice_ref)])
        if found:
            return found
        domain.append(("currency_id", "=", currency.id))
        if partner:
            found |= moves.search(
                [
                    *domain,
                    ("commercial_partner_id", "=", partner.commercial_partner_id.id),
                ],
                limit=200,
            )
        else:
            found |= moves.search(
                [*domain, ("amount_residual", "=", float(change.amount))], limit=50
            )
        return found

    def _stripe_apply_PaymentReceived(self, change):
        """Register the money as a payment in the Stripe journal and reconcile
        it with the invoice it pays."""
        key = change.payment_key
        existing = self._stripe_bound(const.BINDING_PAYMENT, key)
        if existing:
            self._stripe_trace(existing, "skipped", note=f"{change.event_type} {key}")
            return _(
                "Payment %(key)s already recorded as %(name)s.",
                key=key,
                name=existing.display_name,
            )
        transaction = self._stripe_transaction(change.payment_intent_id)
        if transaction:
            return self._stripe_link_transaction(change, transaction)

        currency = self._stripe_currency(change.currency)
        partner = self._stripe_bound(const.BINDING_CUSTOMER, change.customer_id)
        target = self._stripe_bound(const.BINDING_PAYMENT_TARGET, key)
        invoices = self._stripe_invoice_candidates(change, currency, partner, target)
        by_id = {invoice.id: invoice for invoice in invoices}
        open_invoices = [
            matching.OpenInvoice(
                id=invoice.id,
                name=invoice.name,
                partner_key=invoice.commercial_partner_id.id,
                currency=invoice.currency_id.name,
                amount_residual=_to_decimal(
                    invoice.amount_residual, invoice.currency_id
                ),
            )
            for invoice in invoices
        ]
        result = matching.match_payment(
            change.amount,
            change.currency,
            open_invoices,
            invoice_ref=None if target else change.invoice_ref,
            invoice_id=target.id if target else change.invoice_id,
            partner_key=partner.commercial_partner_id.id if partner else None,
        )
        if result.status == matching.MatchStatus.UNAPPLIED:
            self._stripe_raise_unapplied(change, result, partner)
        invoice = by_id[result.invoice.id]
        if result.status == matching.MatchStatus.OVERPAYMENT:
            raise BusinessError(
                result.reason,
                category="overpayment",
                problems=[
                    _(
                        "Stripe %(key)s: %(amount)s %(currency)s received.",
                        key=key,
                        amount=change.amount,
                        currency=change.currency,
                    )
                ],
                records=[("account.move", invoice.id)],
                external_ref=(const.BINDING_PAYMENT_TARGET, key),
                suggested_action=_(
                    "Register the payment by hand and decide about the excess "
                    "(refund, customer credit), then ignore this exception."
                ),
            )
        payment = self._stripe_register_payment(change, invoice, currency)
        note = _(
            "%(status)s match: %(reason)s", status=result.status, reason=result.reason
        )
        self._stripe_trace(payment, "created", note=note[:250])
        self._stripe_trace(invoice, "updated", note=_("paid by %s", payment.name))
        fee_note = self._stripe_book_fee(change)
        message = self._stripe_payment_message(change, payment, invoice, result)
        return f"{message} {fee_note}" if fee_note else message

    def _stripe_payment_message(self, change, payment, invoice, result):
        return _(
            "Payment %(payment)s of %(amount)s %(currency)s applied to %(invoice)s "
            "(%(status)s).",
            payment=payment.name,
            amount=change.amount,
            currency=change.currency,
            invoice=invoice.name,
            status=result.status,
        )

    def _stripe_raise_unapplied(self, change, result, partner):
        candidates = [
            self.env._(
                "%(name)s: %(amount)s %(currency)s open (invoice id %(id)s)",
                name=candidate.name,
                amount=candidate.amount_residual,
                currency=candidate.currency,
                id=candidate.id,
            )
            for candidate in result.candidates
        ]
        if change.customer_id and not partner:
            external_ref = (const.BINDING_CUSTOMER, change.customer_id)
            action = _(
                "Link Stripe customer %s to its Odoo partner (Link), which "
                "retries the payment; or register it by hand and ignore this.",
                change.customer_id,
            )
        else:
            external_ref = (const.BINDING_PAYMENT_TARGET, change.payment_key)
            action = _(
                "Choose the invoice this payment pays in 'Link to' and Link: "
                "the payment is applied to it. Or register it by hand and "
                "ignore this exception."
            )
        raise BusinessError(
            _(
                "Unapplied Stripe payment %(key)s of %(amount)s %(currency)s: "
                "%(reason)s",
                key=change.payment_key,
                amount=change.amount,
                currency=change.currency,
                reason=result.reason,
            ),
            category="unapplied_cash",
            problems=candidates or [_("No candidate invoice.")],
            records=[("account.move", candidate.id) for candidate in result.candidates],
            external_ref=external_ref,
            suggested_action=action,
        )

    def _stripe_payment_values(self, change, invoice, currency, journal):
        """``account.payment`` values of the money ``change`` received."""
        return {
            "payment_type": "inbound",
            "partner_type": "customer",
            "partner_id": invoice.commercial_partner_id.id,
            "amount": self._stripe_amount(change.amount, currency),
            "currency_id": currency.id,
            "journal_id": journal.id,
            "date": (change.created or change.event_created).date(),
            "memo": _("Stripe %s", change.payment_key),
            "payment_reference": change.payment_key,
            # Linked from the start: one insert with the payment instead of a
            # write on the invoice after reconciling.
            "invoice_ids": [fields.Command.link(invoice.id)],
        }

    def _stripe_register_payment(self, change, invoice, currency):
        journal = self._stripe_journal()
        payment = self.env["account.payment"].create(
            self._stripe_payment_values(change, invoice, currency, journal)
        )
        self._stripe_post(payment)
        self._stripe_reconcile(payment, invoice)
        self._stripe_bind(const.BINDING_PAYMENT, change.payment_key, payment)
        if change.charge_id:
            self._stripe_bind(const.BINDING_CHARGE, change.charge_id, payment)
        return payment

    def _stripe_link_transaction(self, change, transaction):
        """Odoo's payment_stripe holds this PaymentIntent: never post it again."""
        if transaction.state != "done":
            raise self._stripe_wait(
                _(
                    "Odoo's payment transaction %(reference)s for %(key)s is still "
                    "%(state)s; waiting for it so the payment is not posted twice.",
                    reference=transaction.reference,
                    key=change.payment_key,
                    state=transaction.state,
                )
            )
        record = transaction
        if "payment_id" in transaction._fields and transaction.payment_id:
            record = transaction.payment_id
        self._stripe_bind(const.BINDING_PAYMENT, change.payment_key, record)
        if change.charge_id:
            self._stripe_bind(const.BINDING_CHARGE, change.charge_id, record)
        self._stripe_trace(
            record, "linked", note=_("recorded by Odoo's payment_stripe")
        )
        return _(
            "Payment %(key)s was recorded by Odoo's payment_stripe as %(name)s; "
            "not posted again.",
            key=change.payment_key,
            name=record.display_name,
        )

    def _stripe_apply_PaymentFailed(self, change):
        """Tell the invoice's followers; nothing is booked."""
        moves = self.env["account.move"]
        invoice = moves
        if change.invoice_id:
            invoice = moves.search(
                [
                    ("id", "=", change.invoice_id),
                    ("company_id", "=", self.company_id.id),
                    ("move_type", "=", "out_invoice"),
                ]
            )
        if not invoice and change.invoice_ref:
            invoice = moves.search(
                [
                    ("name", "=", change.invoice_ref),
                    ("company_id", "=", self.company_id.id),
                    ("move_type", "=", "out_invoice"),
                ],
                limit=1,
            )
        reason = " / ".join(
            part
            for part in (
                change.failure_code,
                change.decline_code,
                change.failure_message,
            )
            if part
        ) or _("no reason given")
        if not invoice:
            return _(
                "Payment %(key)s failed (%(reason)s); no invoice named.",
                key=change.payment_intent_id,
                reason=reason,
            )
        invoice.message_post(
            body=_(
                "Stripe payment %(key)s of %(amount)s %(currency)s failed: %(reason)s",
                key=change.payment_intent_id,
                amount=change.amount,
                currency=change.currency,
                reason=reason,
            )
        )
        self._stripe_trace(
            invoice, "updated", note=_("payment failed: %s", reason)[:250]
        )
        return _(
            "Payment %(key)s failed (%(reason)s); %(invoice)s told.",
            key=change.payment_intent_id,
            reason=reason,
            invoice=invoice.name,
        )

    # ---------------------------------------------------------------- refunds

    def _stripe_apply_RefundIssued(self, change):
        """Book the refunded money as an outbound payment reconciled with the
        invoice's credit note, bringing the booked total up to what Stripe
        reports, never adding the same refund twice."""
        label = change.refund_id or _("refunds of %s", change.charge_id)
        original = self._stripe_find_payment(change.charge_id, change.payment_intent_id)
        if not original:
            raise self._stripe_wait(
                _(
                    "The payment refunded by %(label)s (charge %(charge)s, "
                    "PaymentIntent %(intent)s) is not recorded yet.",
                    label=label,
                    charge=change.charge_id or "-",
                    intent=change.payment_intent_id or "-",
                )
            )
        if original._name != "account.payment" or (
            "payment_transaction_id" in original._fields
            and original.payment_transaction_id
        ):
            self._stripe_trace(
                original, "skipped", note=_("refund left to payment_stripe")
            )
            return _(
                "%s: the payment was recorded by Odoo's payment_stripe, which "
                "books its refunds.",
                label,
            )
        if money.normalize_currency(change.currency) != original.currency_id.name:
            raise BusinessError(
                _(
                    "Refund %(label)s is in %(refund)s but payment %(payment)s is in "
                    "%(currency)s.",
                    label=label,
                    refund=change.currency,
                    payment=original.name,
                    currency=original.currency_id.name,
                ),
                category="reconciliation",
                records=[("account.payment", original.id)],
            )
        ledger = dict(original.stripe_refund_ledger or {})
        refunds = dict(ledger.get("refunds") or {})
        if not change.is_cumulative_total:
            known = refunds.get(change.refund_id) or {}
            if change.status in const.REFUND_FAILED_STATUSES:
                if known.get("status") in const.REFUND_BOOKED_STATUSES:
                    raise BusinessError(
                        _(
                            "Stripe refund %(refund)s is %(status)s but was already "
                            "booked against payment %(payment)s.",
                            refund=change.refund_id,
                            status=change.status,
                            payment=original.name,
                        ),
                        category="reconciliation",
                        records=[("account.payment", original.id)],
                        suggested_action=_(
                            "Cancel the refund payment of that amount, then ignore "
                            "this exception."
                        ),
                    )
                refunds[change.refund_id] = {
                    "amount": str(change.amount),
                    "status": change.status,
                }
                original.stripe_refund_ledger = {**ledger, "refunds": refunds}
                return _(
                    "Refund %(refund)s %(status)s: nothing booked.",
                    refund=change.refund_id,
                    status=change.status,
                )
            if change.status not in const.REFUND_BOOKED_STATUSES:
                if known.get("status") not in const.REFUND_BOOKED_STATUSES:
                    refunds[change.refund_id] = {
                        "amount": str(change.amount),
                        "status": change.status,
                    }
                    original.stripe_refund_ledger = {**ledger, "refunds": refunds}
                return _(
                    "Refund %(refund)s is %(status)s: booked once it succeeds.",
                    refund=change.refund_id,
                    status=change.status,
                )
            refunds[change.refund_id] = {
                "amount": str(change.amount),
                "status": change.status,
            }
        cumulative = Decimal(ledger.get("cumulative") or "0")
        if change.is_cumulative_total:
            cumulative = max(cumulative, change.amount)
        succeeded = sum(
            (
                Decimal(row["amount"])
                for row in refunds.values()
                if row.get("status") in const.REFUND_BOOKED_STATUSES
            ),
            Decimal(0),
        )
        target = max(cumulative, succeeded)
        currency = original.currency_id
        booked = sum(
            (
                _to_decimal(refund.amount, currency)
                for refund in original.stripe_refund_payment_ids
                if refund.state not in ("draft", "canceled", "rejected")
            ),
            Decimal(0),
        )
        to_book = target - booked
        new_ledger = {**ledger, "refunds": refunds, "cumulative": str(cumulative)}
        if to_book <= 0:
            original.stripe_refund_ledger = new_ledger
            self._stripe_trace(original, "skipped", note=_("%s already booked", label))
            return _(
                "%(label)s: %(amount)s already booked.", label=label, amount=booked
            )
        if target > _to_decimal(original.amount, currency):
            raise BusinessError(
                _(
                    "Stripe reports %(target)s %(currency)s refunded on payment "
                    "%(payment)s of %(amount)s.",
                    target=target,
                    currency=currency.name,
                    payment=original.name,
                    amount=original.amount,
                ),
                category="reconciliation",
                records=[("account.payment", original.id)],
            )
        credit_note = self._stripe_credit_note(original, to_book, label)
        refund = self.env["account.payment"].create(
            {
                "payment_type": "outbound",
                "partner_type": "customer",
                "partner_id": original.partner_id.id,
                "amount": float(to_book),
                "currency_id": currency.id,
                "journal_id": self._stripe_journal().id,
                "date": (change.created or change.event_created).date(),
                "memo": _("Stripe refund %s", label),
                "payment_reference": change.refund_id or change.charge_id,
                "stripe_refunded_payment_id": original.id,
            }
        )
        self._stripe_post(refund)
        self._stripe_reconcile(refund, credit_note)
        original.stripe_refund_ledger = new_ledger
        if change.refund_id:
            self._stripe_bind(const.BINDING_REFUND, change.refund_id, refund)
        self._stripe_trace(refund, "created", note=_("refund of %s", original.name))
        self._stripe_trace(
            credit_note, "updated", note=_("refunded by %s", refund.name)
        )
        return _(
            "Refund %(refund)s of %(amount)s %(currency)s applied to %(credit)s.",
            refund=refund.name,
            amount=to_book,
            currency=currency.name,
            credit=credit_note.name,
        )

    def _stripe_credit_note(self, original, amount, label):
        """The posted, open credit note of an invoice the payment paid, able to
        take ``amount``.

        :raises BusinessError: category credit_note when there is none
        """
        invoices = self._stripe_paid_invoices(original)
        credit_notes = self.env["account.move"].search(
            [
                ("move_type", "=", "out_refund"),
                ("state", "=", "posted"),
                ("reversed_entry_id", "in", invoices.ids),
                ("payment_state", "in", ("not_paid", "partial")),
            ],
            order="id",
        )
        for credit_note in credit_notes:
            residual = _to_decimal(credit_note.amount_residual, credit_note.currency_id)
            if credit_note.currency_id == original.currency_id and residual >= amount:
                return credit_note
        raise BusinessError(
            _(
                "Stripe refund %(label)s of %(amount)s %(currency)s has no open "
                "credit note to be applied to.",
                label=label,
                amount=amount,
                currency=original.currency_id.name,
            ),
            category="credit_note",
            problems=[
                _(
                    "Invoices paid by %(payment)s: %(names)s",
                    payment=original.name,
                    names=", ".join(invoices.mapped("name")) or "-",
                )
            ],
            records=[("account.move", invoice.id) for invoice in invoices]
            or [("account.payment", original.id)],
            suggested_action=_(
                "Create and post a credit note (Reverse) for the refunded amount "
                "on the invoice, then Retry."
            ),
        )

    # --------------------------------------------------------------- disputes

    def _stripe_dispute_invoice(self, change):
        binding = self.env["qtc.binding"]._qtc_lookup(
            self, const.BINDING_DISPUTE, change.dispute_id
        )
        if binding:
            return binding, self.env["account.move"].browse(binding.res_id).exists()
        original = self._stripe_find_payment(change.charge_id, change.payment_intent_id)
        if not original:
            raise self._stripe_wait(
                _(
                    "The payment disputed by %(dispute)s (charge %(charge)s) is not "
                    "recorded yet.",
                    dispute=change.dispute_id,
                    charge=change.charge_id,
                )
            )
        invoices = self._stripe_paid_invoices(original)
        if not invoices:
            raise BusinessError(
                _(
                    "Dispute %(dispute)s concerns %(payment)s, which paid no invoice.",
                    dispute=change.dispute_id,
                    payment=original.display_name,
                ),
                category="dispute",
                severity="high",
                records=[(original._name, original.id)],
            )
        return binding, invoices.sorted("id")[:1]

    def _stripe_dispute_is_stale(self, binding, change, invoice):
        """An event older than the last one applied to the dispute is stale;
        at equal times, an opening never undoes a closing."""
        if not binding or not binding.external_updated_at:
            return False
        incoming = _naive_utc(change.event_created)
        if incoming < binding.external_updated_at:
            return True
        return (
            incoming == binding.external_updated_at
            and isinstance(change, mapper.DisputeOpened)
            and invoice.stripe_dispute_status in const.DISPUTE_FLAG_CLOSED
        ) or (
            incoming == binding.external_updated_at
            and invoice.stripe_dispute_id == change.dispute_id
            and invoice.stripe_dispute_status
            == const.DISPUTE_STATUS_TO_FLAG.get(change.status, "open")
        )

    def _stripe_record_dispute(self, change, default_flag):
        """Bind the dispute and set the invoice's dispute flag from a newer
        event; a stale one changes nothing.

        :returns: ``(invoice, None)``, or ``(invoice, message)`` for a stale
            event or a repeated closing (nothing to do)
        """
        binding, invoice = self._stripe_dispute_invoice(change)
        if self._stripe_dispute_is_stale(binding, change, invoice):
            self._stripe_trace(invoice, "skipped", note=_("stale dispute event"))
            return invoice, _(
                "Dispute %s: stale event, nothing changed.", change.dispute_id
            )
        flag = const.DISPUTE_STATUS_TO_FLAG.get(change.status, default_flag)
        if (
            flag in const.DISPUTE_FLAG_CLOSED
            and invoice.stripe_dispute_id == change.dispute_id
            and invoice.stripe_dispute_status == flag
        ):
            # A later event repeating a closing already applied: applying it
            # again would resolve the exception the closing opened (a lost
            # dispute's) and note the outcome twice.
            self._stripe_trace(invoice, "skipped", note=_("dispute already closed"))
            return invoice, _(
                "Dispute %(dispute)s already closed (%(flag)s), nothing changed.",
                dispute=change.dispute_id,
                flag=flag,
            )
        self._stripe_bind(
            const.BINDING_DISPUTE,
            change.dispute_id,
            invoice,
            updated_at=_naive_utc(change.event_created),
        )
        # Written by the connector only (see account_move.STRIPE_RECORDED_FIELDS).
        invoice.sudo().write(
            {"stripe_dispute_status": flag, "stripe_dispute_id": change.dispute_id}
        )
        return invoice, None

    def _stripe_apply_DisputeOpened(self, change):
        """Flag the invoice, give its responsible an activity and open a
        high-severity dispute exception."""
        invoice, stale = self._stripe_record_dispute(change, default_flag="open")
        if stale:
            return stale
        summary = _(
            "Stripe dispute %(dispute)s: %(amount)s %(currency)s (%(reason)s)",
            dispute=change.dispute_id,
            amount=change.amount,
            currency=change.currency,
            reason=change.reason,
        )
        invoice.message_post(body=summary)
        responsible = invoice.invoice_user_id or self.responsible_user_id
        if responsible:
            invoice.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=summary[:100],
                note=_("Answer the dispute in Stripe before its evidence is due."),
                user_id=responsible.id,
            )
        if invoice.stripe_dispute_status == "open":
            self._stripe_open_exception(
                BusinessError(
                    summary,
                    category="dispute",
                    severity="high",
                    problems=[
                        _(
                            "Invoice %(invoice)s, charge %(charge)s, status %(status)s",
                            invoice=invoice.name,
                            charge=change.charge_id,
                            status=change.status,
                        )
                    ],
                    records=[("account.move", invoice.id)],
                    external_ref=(const.BINDING_DISPUTE, change.dispute_id),
                    suggested_action=_(
                        "Submit evidence in Stripe; this closes when Stripe "
                        "closes the dispute."
                    ),
                )
            )
        self._stripe_trace(invoice, "updated", note=summary[:250])
        return _(
            "Dispute %(dispute)s opened on %(invoice)s.",
            dispute=change.dispute_id,
            invoice=invoice.name,
        )

    def _stripe_apply_DisputeClosed(self, change):
        """Update the invoice's flag, note the outcome and resolve the dispute
        exception. A lost dispute's funds leave the Stripe journal and the
        invoice is open again for them (see ``_stripe_book_lost_dispute``); a
        won one books nothing, its funds were reinstated. Stripe's dispute fee
        is booked when it was not given back."""
        invoice, stale = self._stripe_record_dispute(change, default_flag="closed")
        if stale:
            return stale
        outcome = _(
            "Stripe dispute %(dispute)s closed: %(status)s.",
            dispute=change.dispute_id,
            status=change.status,
        )
        invoice.message_post(body=outcome)
        exceptions = self.env["qtc.exception"].search(
            [
                ("backend_id", "=", self.id),
                ("category", "=", "dispute"),
                ("external_type", "=", const.BINDING_DISPUTE),
                ("external_id", "=", change.dispute_id),
                ("state", "=", "open"),
            ]
        )
        exceptions._qtc_close("resolved", outcome)
        invoice.activity_ids.filtered(
            lambda activity: change.dispute_id in (activity.summary or "")
        ).action_feedback(feedback=outcome)
        self._stripe_trace(invoice, "updated", note=outcome[:250])
        results = [outcome]
        if change.status == "lost":
            results.append(self._stripe_book_lost_dispute(change, invoice))
        results.append(self._stripe_book_dispute_fee(change))
        return " ".join(result for result in results if result)

    def _stripe_book_lost_dispute(self, change, invoice):
        """Book the funds of a lost dispute out of the Stripe journal as an
        outbound customer payment, and open the disputed invoice again for
        them: the customer still owes the money. Finance is told by a
        high-severity exception. Bound to the dispute, so booked once.

        The payment that paid the invoice is unreconciled from its invoices,
        reconciled with the chargeback first, and what is left of it is
        applied back to its invoices, the disputed one last: the disputed
        invoice is the one reopened.

        :returns: a sentence about what was booked
        """
        if self._stripe_bound(const.BINDING_DISPUTE_LOSS, change.dispute_id):
            return _("Loss of dispute %s already booked.", change.dispute_id)
        original = self._stripe_find_payment(change.charge_id, change.payment_intent_id)
        problem = None
        if not original or original._name != "account.payment":
            problem = _(
                "The disputed payment is not an Odoo payment this connector can "
                "reverse (%s).",
                original.display_name if original else _("not found"),
            )
        elif money.normalize_currency(change.currency) != original.currency_id.name:
            problem = _(
                "The dispute is in %(dispute)s but payment %(payment)s is in "
                "%(currency)s.",
                dispute=change.currency,
                payment=original.name,
                currency=original.currency_id.name,
            )
        elif change.amount > _to_decimal(original.amount, original.currency_id):
            problem = _(
                "The disputed %(amount)s is more than payment %(payment)s.",
                amount=change.amount,
                payment=original.name,
            )
        summary = _(
            "Stripe dispute %(dispute)s lost: %(amount)s %(currency)s taken back "
            "from the Stripe balance.",
            dispute=change.dispute_id,
            amount=change.amount,
            currency=change.currency,
        )
        if problem:
            self._stripe_open_exception(
                BusinessError(
                    summary,
                    category="dispute",
                    severity="high",
                    problems=[problem],
                    records=[("account.move", invoice.id)],
                    external_ref=(const.BINDING_DISPUTE, change.dispute_id),
                    suggested_action=_(
                        "Book the chargeback out of the Stripe journal by hand and "
                        "reopen the invoice, then ignore this exception."
                    ),
                )
            )
            return _(
                "%(summary)s Not booked: %(problem)s", summary=summary, problem=problem
            )
        currency = original.currency_id
        chargeback = self.env["account.payment"].create(
            {
                "payment_type": "outbound",
                "partner_type": "customer",
                "partner_id": original.partner_id.id,
                "amount": self._stripe_amount(change.amount, currency),
                "currency_id": currency.id,
                "journal_id": self._stripe_journal().id,
                "date": change.event_created.date(),
                "memo": _("Stripe dispute %s lost", change.dispute_id),
                "payment_reference": change.dispute_id,
                # The account the disputed payment was booked on, not the
                # customer's current default: otherwise the chargeback cannot
                # be set against it and the invoice never opens again.
                "destination_account_id": original.destination_account_id.id,
            }
        )
        self._stripe_post(chargeback)
        reopened = self._stripe_reopen_invoices(original, chargeback, invoice)
        self._stripe_bind(const.BINDING_DISPUTE_LOSS, change.dispute_id, chargeback)
        self._stripe_trace(
            chargeback, "created", note=_("lost dispute %s", change.dispute_id)
        )
        self._stripe_trace(
            reopened, "updated", note=_("reopened by %s", chargeback.name)
        )
        names = ", ".join(reopened.mapped("name")) or "-"
        self._stripe_open_exception(
            BusinessError(
                summary,
                category="dispute",
                severity="high",
                problems=[
                    _(
                        "Booked as %(payment)s; open again: %(invoices)s.",
                        payment=chargeback.name,
                        invoices=names,
                    )
                ],
                records=[("account.move", invoice.id)],
                external_ref=(const.BINDING_DISPUTE, change.dispute_id),
                suggested_action=_(
                    "Collect the amount from the customer again or write it off, "
                    "then ignore this exception."
                ),
            )
        )
        return _(
            "%(summary)s Booked as %(payment)s; open again: %(invoices)s.",
            summary=summary,
            payment=chargeback.name,
            invoices=names,
        )

    def _stripe_reopen_invoices(self, original, chargeback, disputed):
        """Take back from ``original``'s invoices what ``chargeback`` took out
        of it: the rest of ``original`` is applied to its other invoices first
        and to the ``disputed`` one last, so that one is what opens again.

        :returns: the invoices whose open amount grew
        """
        account_types = self.env["account.payment"]._get_valid_payment_account_types()

        def counterpart(payment):
            return payment.move_id.line_ids.filtered(
                lambda line: line.account_id.account_type in account_types
            )

        original_lines = counterpart(original)
        invoices = self._stripe_paid_invoices(original)
        invoice_lines = invoices.line_ids.filtered(
            lambda line: line.account_id in original_lines.account_id
        )
        residuals = {invoice: invoice.amount_residual for invoice in invoices}
        (original_lines.matched_debit_ids | original_lines.matched_credit_ids).filtered(
            lambda partial: (
                partial.debit_move_id in invoice_lines
                or partial.credit_move_id in invoice_lines
            )
        ).unlink()
        self._stripe_reconcile_open_lines(original_lines + counterpart(chargeback))
        for invoice in (invoices - disputed).sorted("id") + (disputed & invoices):
            self._stripe_reconcile_open_lines(
                original_lines + (invoice_lines & invoice.line_ids)
            )
        return invoices.filtered(
            lambda invoice: (
                invoice.currency_id.compare_amounts(
                    invoice.amount_residual, residuals[invoice]
                )
                > 0
            )
        )

    @staticmethod
    def _stripe_reconcile_open_lines(lines):
        """Reconcile the open lines of ``lines`` account by account."""
        for account in lines.account_id:
            same = lines.filtered(
                lambda line, account=account: (
                    line.account_id == account and not line.reconciled
                )
            )
            if same.filtered(lambda line: line.balance > 0) and same.filtered(
                lambda line: line.balance < 0
            ):
                same.reconcile()

    def _stripe_book_dispute_fee(self, change):
        """Book Stripe's net dispute fee from the dispute's balance
        transactions, when the backend books fees.

        :returns: a sentence, or ``""`` when there is no fee to book
        """
        fee = mapper.dispute_fee(change)
        if not fee:
            return ""
        amount, currency_code, txn_id = fee
        if not (self.stripe_book_fees and self.stripe_fee_account_id):
            return _(
                "Stripe's dispute fee of %(fee)s %(currency)s is not booked: fee "
                "booking is off.",
                fee=amount,
                currency=currency_code,
            )
        return self._stripe_book_txn_fee(txn_id, amount, currency_code, change)

    # ---------------------------------------------------------------- payouts

    def _stripe_apply_PayoutPaid(self, change):
        """Move the payout from the Stripe balance journal to the bank journal:
        an outbound and an inbound payment on the company's liquidity transfer
        account, reconciled together (Odoo 18 has no single internal-transfer
        payment). The bank journal's payment then matches the bank statement.

        When the backend books fees, Stripe's fee on the payout (an Instant
        Payout's) is read from its balance transaction and booked to the fee
        account out of the Stripe journal: the bank receives the payout amount
        and the Stripe balance loses the amount plus the fee, as in Stripe."""
        existing = self._stripe_bound(const.BINDING_PAYOUT, change.payout_id)
        if existing:
            self._stripe_trace(existing, "skipped", note=change.payout_id)
            return _("Payout %s already recorded.", change.payout_id)
        # Read before any write: a failed call retries the job with nothing
        # half-booked.
        payout_fee = self._stripe_payout_fee(change)
        source = self._stripe_journal()
        destination = self._stripe_journal("stripe_bank_journal_id")
        transfer_account = self.company_id.transfer_account_id
        if not transfer_account:
            raise BusinessError(
                _("Company %s has no internal transfer account.", self.company_id.name),
                category="configuration",
                suggested_action=_("Set it in the accounting settings, then Retry."),
            )
        currency = self._stripe_currency(change.currency)
        common = {
            "partner_type": "customer",
            "amount": self._stripe_amount(change.amount, currency),
            "currency_id": currency.id,
            "date": (change.arrival_date or change.created).date(),
            "memo": _("Stripe payout %s", change.payout_id),
            "payment_reference": change.payout_id,
            "destination_account_id": transfer_account.id,
        }
        payments = self.env["account.payment"].create(
            [
                {**common, "payment_type": "outbound", "journal_id": source.id},
                {**common, "payment_type": "inbound", "journal_id": destination.id},
            ]
        )
        outgoing, incoming = payments
        outgoing.paired_internal_transfer_payment_id = incoming
        incoming.paired_internal_transfer_payment_id = outgoing
        self._stripe_post(payments)
        if transfer_account.reconcile:
            payments.move_id.line_ids.filtered(
                lambda line: line.account_id == transfer_account
            ).reconcile()
        self._stripe_bind(const.BINDING_PAYOUT, change.payout_id, outgoing)
        self._stripe_trace(payments, "created", note=_("payout %s", change.payout_id))
        message = _(
            "Payout %(payout)s of %(amount)s %(currency)s moved from %(origin)s to "
            "%(destination)s.",
            payout=change.payout_id,
            amount=change.amount,
            currency=change.currency,
            origin=source.name,
            destination=destination.name,
        )
        if payout_fee:
            fee_note = self._stripe_book_txn_fee(
                payout_fee.txn_id, payout_fee.fee, payout_fee.currency, change
            )
            message = f"{message} {fee_note}"
        return message

    def _stripe_payout_fee(self, change):
        """Stripe's fee on a payout, from its balance transaction, when the
        backend books fees and has not booked this one yet.

        :returns: a ``mapper.BalanceTransaction`` with a positive fee, or
            ``None``
        :raises BusinessError: the balance transaction cannot be read
        """
        txn_id = change.balance_transaction_id
        if not (
            self.stripe_book_fees
            and self.stripe_fee_account_id
            and txn_id
            and self._stripe_has_api_key()
        ) or self._stripe_bound(const.BINDING_FEE, txn_id):
            return None
        data = self._stripe_api("GET", f"/v1/balance_transactions/{txn_id}")
        try:
            txn = mapper.read_balance_transaction(data)
        except mapper.MappingError as exc:
            raise BusinessError(
                _("Balance transaction %s of a payout cannot be read.", txn_id),
                category="data",
                problems=list(exc.problems),
            ) from None
        return txn if txn.fee > 0 else None

    def _stripe_book_txn_fee(self, txn_id, fee, currency_code, change):
        """Book Stripe's fee on one balance transaction to the fee account, out
        of the Stripe journal, bound to the transaction so it is booked once.

        :param fee: ``Decimal`` in major units of ``currency_code``
        :returns: a sentence about the fee
        """
        currency = self._stripe_currency(currency_code)
        if self._stripe_bound(const.BINDING_FEE, txn_id):
            return _("Fee of %s already booked.", txn_id)
        journal = self._stripe_journal()
        move = self._stripe_fee_move(txn_id, fee, currency, journal, change)
        self._stripe_bind(const.BINDING_FEE, txn_id, move)
        self._stripe_trace(move, "created", note=_("Stripe fee %s", txn_id))
        return _("Fee %(fee)s %(currency)s booked.", fee=fee, currency=currency.name)

    # ------------------------------------------------------------------- fees

    def _stripe_book_fee(self, change):
        """Book Stripe's fee on a payment from its balance transaction, when
        the backend is set to and can (fee account, API key, known charge).

        :returns: a sentence about the fee, or ``""``
        """
        if not (
            self.stripe_book_fees
            and self.stripe_fee_account_id
            and change.charge_id
            and self._stripe_has_api_key()
        ):
            return ""
        charge = self._stripe_api("GET", f"/v1/charges/{change.charge_id}")
        txn_ref = charge.get("balance_transaction")
        txn_id = txn_ref.get("id") if isinstance(txn_ref, dict) else txn_ref
        if not txn_id:
            return _("No balance transaction yet; fee not booked.")
        if self._stripe_bound(const.BINDING_FEE, txn_id):
            return ""
        txn = self._stripe_api("GET", f"/v1/balance_transactions/{txn_id}")
        fee_minor = txn.get("fee")
        if isinstance(fee_minor, bool) or not isinstance(fee_minor, int):
            raise BusinessError(
                _("Balance transaction %s has no integer fee.", txn_id),
                category="data",
            )
        if fee_minor <= 0:
            return ""
        fee_currency = money.normalize_currency(txn.get("currency") or change.currency)
        fee = money.to_major(fee_minor, fee_currency)
        currency = self._stripe_currency(fee_currency)
        journal = self._stripe_journal()
        move = self._stripe_fee_move(txn_id, fee, currency, journal, change)
        self._stripe_bind(const.BINDING_FEE, txn_id, move)
        self._stripe_trace(move, "created", note=_("Stripe fee %s", txn_id))
        return _("Fee %(fee)s %(currency)s booked.", fee=fee, currency=currency.name)

    def _stripe_fee_move(self, txn_id, fee, currency, journal, change):
        company = self.company_id
        amount = self._stripe_amount(fee, currency)
        date = (change.created or change.event_created).date()
        balance = currency._convert(amount, company.currency_id, company, date)
        line_common = {"currency_id": currency.id, "name": _("Stripe fee %s", txn_id)}
        move = self.env["account.move"].create(
            {
                "move_type": "entry",
                "journal_id": journal.id,
                "date": date,
                "ref": _("Stripe fee %s", txn_id),
                "line_ids": [
                    fields.Command.create(
                        {
                            **line_common,
                            "account_id": self.stripe_fee_account_id.id,
                            "amount_currency": amount,
                            "balance": balance,
                        }
                    ),
                    fields.Command.create(
                        {
                            **line_common,
                            "account_id": journal.default_account_id.id,
                            "amount_currency": -amount,
                            "balance": -balance,
                        }
                    ),
                ],
            }
        )
        move.action_post()
        return move

    # ---------------------------------------------------- outbound: payments

    def _stripe_customer_for(self, partner):
        """The Stripe customer of ``partner``'s commercial entity, created in
        Stripe and bound on first use."""
        commercial = partner.commercial_partner_id
        bindings = self.env["qtc.binding"]
        customer_id = bindings._qtc_to_external(
            self, commercial, const.BINDING_CUSTOMER
        )
        if customer_id:
            return customer_id
        data = {
            "name": commercial.name,
            "metadata[odoo_partner_id]": str(commercial.id),
        }
        if commercial.email:
            data["email"] = commercial.email
        customer = self._stripe_api(
            "POST",
            "/v1/customers",
            data=data,
            idempotency_key=f"qtc-{self.id}-customer-{commercial.id}",
        )
        self._stripe_bind(const.BINDING_CUSTOMER, customer["id"], commercial)
        self._stripe_trace(
            commercial, "linked", note=_("Stripe customer %s", customer["id"])
        )
        return customer["id"]

    def _stripe_create_payment_link(self, invoice):
        """Create a Checkout Session paying the invoice's open amount, with the
        invoice in the metadata of the session and of its PaymentIntent, and
        store its URL on the invoice.

        :returns: the Checkout URL
        """
        self.ensure_one()
        currency = invoice.currency_id
        amount = _to_decimal(invoice.amount_residual, currency)
        minor = money.to_minor(amount, currency.name)
        metadata = {
            mapper.METADATA_INVOICE_REF: invoice.name,
            mapper.METADATA_INVOICE_ID: str(invoice.id),
        }
        base_url = invoice.get_base_url()
        data = {
            "mode": "payment",
            "customer": self._stripe_customer_for(invoice.partner_id),
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": currency.name.lower(),
            "line_items[0][price_data][unit_amount]": str(minor),
            "line_items[0][price_data][product_data][name]": invoice.name,
            "success_url": f"{base_url}{invoice.get_portal_url()}",
            "cancel_url": f"{base_url}{invoice.get_portal_url()}",
        }
        for key, value in metadata.items():
            data[f"metadata[{key}]"] = value
            data[f"payment_intent_data[metadata][{key}]"] = value
        key = f"qtc-{self.id}-checkout-{invoice.id}-{minor}-{currency.name}"
        if invoice.stripe_checkout_session_id:
            # The session that replaces another has a key of its own: Stripe
            # keeps keys 24 hours, as long as a session lives, so the bare key
            # would give back the session being replaced.
            key = f"{key}-after-{invoice.stripe_checkout_session_id}"
        session = self._stripe_api(
            "POST",
            "/v1/checkout/sessions",
            data=data,
            # Same invoice, open amount and predecessor: the same session,
            # even on a retry or a second click.
            idempotency_key=key,
        )
        expires_at = session.get("expires_at")
        # Stripe's answer, stored by the connector only: the customer's
        # durable link leads to this URL (see account_move.STRIPE_RECORDED_FIELDS).
        invoice.sudo().write(
            {
                "stripe_payment_url": session.get("url"),
                "stripe_checkout_session_id": session.get("id"),
                "stripe_payment_url_expires_at": _naive_utc(
                    datetime.fromtimestamp(expires_at, tz=UTC)
                )
                if isinstance(expires_at, int) and not isinstance(expires_at, bool)
                else False,
                "stripe_payment_url_amount": float(amount),
            }
        )
        invoice.message_post(
            body=_("Stripe payment link created: %s", session.get("url"))
        )
        self.env["qtc.trace"]._qtc_record(
            invoice, "updated", note=_("Stripe payment link"), backend=self
        )
        return session.get("url")

    # ------------------------------------------------ daily reconciliation

    @api.model
    def _stripe_cron_reconcile(self):
        """Queue yesterday's reconciliation for each active Stripe backend."""
        day = (fields.Datetime.now() - timedelta(days=1)).date()
        for backend in self.search(
            [("provider", "=", "stripe"), ("state", "=", "active")]
        ):
            self.env["qtc.job"]._qtc_enqueue(
                backend,
                "_stripe_reconcile_day",
                [day.isoformat()],
                name=_("Stripe reconciliation %(day)s", day=day),
                backend=backend,
                identity_key=f"stripe:reconcile:{backend.id}:{day}",
                user=backend._qtc_technical_user(),
            )

    @job_function
    def _stripe_reconcile_day(self, day):
        """Compare one UTC day of Stripe balance transactions with Odoo: every
        charge, refund and payout must be recorded, and every payment Odoo
        recorded from a charge must be in Stripe. A revenue assurance
        reconciliation (``qtc.reconciliation.run``, see
        ``models/qtc_reconciliation_run.py``): each difference opens one
        ``reconciliation`` exception, resolved once a later run agrees.

        :param day: ISO date (``YYYY-MM-DD``)
        :returns: a summary
        """
        self.ensure_one()
        run = self.env["qtc.reconciliation.run"]._stripe_run_day(
            self, fields.Date.to_date(day)
        )
        return run.summary
