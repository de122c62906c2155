import json
import logging

from odoo import Command, _, api, fields, models
from odoo.addons.qtc_connector_base.access import (
    GROUP_MANAGER,
    GROUP_USER,
    check_action,
)
from odoo.addons.qtc_connector_base.exceptions import RetryableError
from odoo.exceptions import UserError

from .. import const
from ..lib import cache
from ..lib.avatax_engine import AvataxEngine, NoAnswer, Reply
from ..lib.breaker import CircuitBreaker
from ..lib.engine import TaxEngineError, TaxEngineRejected, TaxEngineUnavailable
from ..lib.rate_table import (
    MISSING_REJECT,
    MISSING_ZERO,
    StoredRateTableEngine,
    build_table,
)
from ..utils import TaxUserError

_logger = logging.getLogger(__name__)

TAX_PROVIDERS = ("avatax", "tax_rate_table")
PROVIDER_LABELS = {"avatax": "AvaTax", "tax_rate_table": "Rate table"}
# Every error status comes back to the adapter, which sorts it with the lib's
# AvaTax error parser (retry later / fix the data) instead of the base's generic
# classification.
ALL_ERROR_STATUSES = tuple(range(400, 600))


class QtcBackend(models.Model):
    _inherit = "qtc.backend"

    provider = fields.Selection(
        selection_add=[("avatax", "AvaTax"), ("tax_rate_table", "Tax rate table")],
        ondelete={"avatax": "set default", "tax_rate_table": "set default"},
    )
    avatax_account_id = fields.Char(
        string="AvaTax account id", groups="qtc_connector_base.group_qtc_manager"
    )
    avatax_license_key = fields.Char(
        string="AvaTax license key",
        compute="_compute_qtc_secrets",
        inverse="_inverse_qtc_secrets",
        groups="qtc_connector_base.group_qtc_manager",
        qtc_secret="avatax_license_key",  # noqa: S106 - the credential name
        help="Write-only. Sent as the password of HTTP Basic authentication.",
    )
    avatax_company_code = fields.Char(
        string="AvaTax company code",
        help="The company code of the AvaTax company transactions are recorded in.",
    )
    avatax_base_url = fields.Char(
        string="AvaTax URL",
        compute="_compute_avatax_base_url",
        help="Follows the backend's environment.",
    )
    tax_rate_ids = fields.One2many("qtc.tax.rate", "backend_id", string="Tax rates")
    tax_rate_missing = fields.Selection(
        [
            (MISSING_REJECT, "Reject the invoice (business exception)"),
            (MISSING_ZERO, "No tax"),
        ],
        string="Place without a rate",
        default=MISSING_REJECT,
        help="What a line shipped to a place (or with a tax code) the table has "
        "no rate for does.",
    )
    tax_outage_policy = fields.Selection(
        const.OUTAGE_POLICIES,
        string="Outage policy",
        default="hold",
        required=True,
        help="What posting an invoice does while the engine does not answer.",
    )
    tax_breaker_threshold = fields.Integer(
        string="Breaker: failures",
        default=const.DEFAULT_BREAKER_THRESHOLD,
        help="Failures within the window that switch the backend to its outage "
        "policy without calling the engine.",
    )
    tax_breaker_window = fields.Integer(
        string="Breaker: window (s)", default=const.DEFAULT_BREAKER_WINDOW
    )
    tax_breaker_cooldown = fields.Integer(
        string="Breaker: cooldown (s)",
        default=const.DEFAULT_BREAKER_COOLDOWN,
        help="How long the breaker stays open before one call probes the engine.",
    )
    tax_breaker_state = fields.Text(
        readonly=True,
        copy=False,
        help="Persisted circuit breaker state (JSON), shared by every worker.",
    )
    tax_breaker_status = fields.Selection(
        [("closed", "Closed"), ("open", "Open"), ("half_open", "Half open")],
        string="Breaker",
        compute="_compute_tax_breaker_status",
    )
    tax_ship_from_id = fields.Many2one(
        "res.partner",
        string="Ship from",
        default=lambda self: self.env.company.partner_id,
        help="The address goods and services are sold from (defaults to the "
        "company's address).",
    )

    _sql_constraints = [
        (
            "tax_breaker_positive",
            "CHECK(tax_breaker_threshold >= 1 AND tax_breaker_window >= 1 "
            "AND tax_breaker_cooldown >= 1)",
            "Breaker threshold, window and cooldown must be at least 1.",
        )
    ]

    @api.depends("provider", "environment")
    def _compute_avatax_base_url(self):
        for backend in self:
            backend.avatax_base_url = (
                const.AVATAX_BASE_URLS[backend.environment]
                if backend.provider == "avatax"
                else False
            )

    @api.depends("tax_breaker_state")
    def _compute_tax_breaker_status(self):
        for backend in self:
            backend.tax_breaker_status = (
                backend._tax_breaker().state
                if backend.provider in TAX_PROVIDERS
                else False
            )

    # ---------------------------------------------------------------- actions

    def action_tax_reset_breaker(self):
        """Close the breaker by hand (after a known outage ended; QTC
        Managers)."""
        check_action(self, GROUP_MANAGER, "write", _("reset a tax engine breaker"))
        for backend in self:
            backend._tax_breaker_save(None)
            backend.message_post(body=_("Tax engine circuit breaker reset."))

    def action_view_tax_rates(self):
        self.ensure_one()
        check_action(self, GROUP_USER, "read", _("open a backend's tax rates"))
        return {
            "type": "ir.actions.act_window",
            "name": _("Tax rates"),
            "res_model": "qtc.tax.rate",
            "view_mode": "list,form",
            "domain": [("backend_id", "=", self.id)],
            "context": {"default_backend_id": self.id},
        }

    # ----------------------------------------------------------------- engine

    @api.model
    def _tax_backend_for(self, company):
        """The company's active tax backend (lowest sequence), or an empty set."""
        return self.search(
            [
                ("provider", "in", TAX_PROVIDERS),
                ("state", "=", "active"),
                ("company_id", "=", company.id),
            ],
            limit=1,
        )

    def _tax_engine(self):
        """The engine behind this backend, implementing ``lib.engine.TaxEngine``.

        :returns: an ``AvataxEngine`` (HTTP through ``_qtc_request``) or a
            ``StoredRateTableEngine`` built from the backend's rates
        :raises TaxUserError: a setting is missing (category configuration)
        """
        self.ensure_one()
        if self.provider == "avatax":
            # sudo: the account id is restricted to managers; it is sent, never
            # shown to the invoicing user whose post triggered the call.
            account_id = self.sudo().avatax_account_id
            missing = [
                label
                for label, value in (
                    (_("AvaTax account id"), account_id),
                    (_("AvaTax company code"), self.avatax_company_code),
                )
                if not value
            ]
            if missing:
                raise self._tax_configuration_error(missing)
            license_key = self._qtc_get_secret("avatax_license_key", required=False)
            if not license_key:
                raise self._tax_configuration_error([_("AvaTax license key")])
            return AvataxEngine(
                self._avatax_transport(account_id, license_key),
                self.avatax_company_code,
            )
        if self.provider == "tax_rate_table":
            try:
                return StoredRateTableEngine(
                    build_table(self._tax_rate_rows()),
                    missing=self.tax_rate_missing or MISSING_REJECT,
                )
            except (ValueError, TypeError) as exc:
                raise self._tax_configuration_error([str(exc)]) from None
        raise UserError(
            _("Backend %(name)s is not a tax engine backend.", name=self.name)
        )

    def _tax_configuration_error(self, problems):
        return TaxUserError(
            _("Tax backend %(name)s is not fully configured.", name=self.name),
            category="configuration",
            problems=[
                self.env._("Missing or invalid: %s", problem) for problem in problems
            ],
            suggested_action=_("Complete the backend's settings (QTC Manager)."),
            records=[("qtc.backend", self.id)],
        )

    def _tax_rate_rows(self):
        self.ensure_one()
        return [
            (
                rate.country_id.code,
                rate.state_id.code or "",
                rate.tax_code or "",
                rate.name,
                rate.jurisdiction_type,
                rate._tax_fraction(),
            )
            for rate in self.tax_rate_ids
        ]

    def _avatax_transport(self, account_id, license_key):
        """The transport ``AvataxEngine`` calls: one request through the base's
        HTTP client, every status handed back for the adapter to classify."""
        self.ensure_one()
        base_url = const.AVATAX_BASE_URLS[self.environment]
        auth = (account_id, license_key)

        def send(method, path, body=None, params=None):
            try:
                response = self._qtc_request(
                    method,
                    base_url + path,
                    json=body,
                    params=params,
                    auth=auth,
                    headers={"Accept": "application/json"},
                    passthrough=ALL_ERROR_STATUSES,
                )
            except RetryableError as exc:
                # Only raised without a response here (all statuses pass through).
                reason = "timeout" if "timed out" in str(exc) else "unreachable"
                raise NoAnswer(reason) from None
            return Reply(response.status_code, response.text, response.headers)

        return send

    def _tax_cache_context(self):
        """What, besides the document, changes a quote: part of the cache key."""
        self.ensure_one()
        context = {
            "backend": self.id,
            "provider": self.provider,
            "environment": self.environment,
        }
        if self.provider == "avatax":
            context["company_code"] = self.avatax_company_code or ""
        else:
            context["rates"] = [
                [country, state, code, name, kind, rate]
                for country, state, code, name, kind, rate in self._tax_rate_rows()
            ]
            context["missing"] = self.tax_rate_missing or MISSING_REJECT
        return context

    # ---------------------------------------------------------------- breaker

    def _tax_breaker(self):
        """The backend's circuit breaker, rebuilt from its persisted state.

        A state that cannot be read (edited by hand) gives a closed breaker and
        a warning in the log rather than blocking every invoice.
        """
        self.ensure_one()
        settings = {
            "failure_threshold": max(1, self.tax_breaker_threshold or 1),
            "window": float(max(1, self.tax_breaker_window or 1)),
            "cooldown": float(max(1, self.tax_breaker_cooldown or 1)),
        }
        try:
            data = (
                json.loads(self.tax_breaker_state) if self.tax_breaker_state else None
            )
            return CircuitBreaker.from_dict(data, **settings)
        except ValueError:
            _logger.warning("backend %s: unreadable breaker state, reset", self.id)
            return CircuitBreaker(**settings)

    def _tax_breaker_save(self, breaker):
        """Persist the breaker state.

        Written with SQL, not ``write()``: the base's ``write`` clears the
        registry caches and renews the HTTP client on every change, which a
        state that changes on every failed call must not do.
        """
        self.ensure_one()
        text = json.dumps(breaker.to_dict()) if breaker else None
        if text == self.tax_breaker_state:
            return
        self.env.cr.execute(
            "UPDATE qtc_backend SET tax_breaker_state = %s WHERE id = %s",
            (text, self.id),
        )
        self.invalidate_recordset(["tax_breaker_state", "tax_breaker_status"])

    def _tax_call(self, operation, *args, **kwargs):
        """Call ``engine.<operation>(*args)`` behind the circuit breaker.

        An open breaker fails fast without calling the engine. A transient
        failure counts towards opening it; any answer from the engine (a
        rejection too: the engine is up) counts as a success and closes a
        half-open breaker after its probe.

        :returns: what the engine returned
        :raises TaxEngineUnavailable: engine down, or the breaker is open (code
            ``BreakerOpen``)
        :raises TaxEngineRejected: the engine refused the document
        :raises TaxUserError: the backend is not configured
        """
        self.ensure_one()
        engine = self._tax_engine()
        breaker = self._tax_breaker()
        if not breaker.allow_request():
            raise TaxEngineUnavailable(
                _(
                    "Tax engine of %(name)s is switched off after repeated "
                    "failures (circuit breaker open).",
                    name=self.name,
                ),
                code="BreakerOpen",
            )
        # The probe slot taken above is persisted with the outcome below.
        try:
            result = getattr(engine, operation)(*args, **kwargs)
        except TaxEngineUnavailable:
            breaker.record_failure()
            self._tax_breaker_save(breaker)
            raise
        except TaxEngineRejected:
            breaker.record_success()
            self._tax_breaker_save(breaker)
            raise
        breaker.record_success()
        self._tax_breaker_save(breaker)
        return result

    def _tax_retry_delay(self, attempts):
        """Seconds before the next try of held work: doubling per attempt, at
        least until the breaker lets a probe through."""
        self.ensure_one()
        delay = min(
            const.RETRY_FIRST_DELAY * 2 ** max(0, attempts - 1), const.RETRY_MAX_DELAY
        )
        return max(delay, int(self._tax_breaker().seconds_until_probe()) + 1)

    # ------------------------------------------------------------ Odoo taxes

    def _tax_odoo_tax(self, detail, company):
        """The Odoo sale tax standing for one jurisdiction rate, reused or created.

        Named e.g. ``AvaTax ILLINOIS STA 6.25%``: percent, price excluded, in the
        company's default sale tax group and tax account, so invoices, journal
        items and tax reports stay standard Odoo.

        :param detail: a ``lib.engine.JurisdictionTax``
        :returns: an ``account.tax`` record (sudoed)
        """
        self.ensure_one()
        percent = detail.rate * 100
        label = const.JURISDICTION_LABELS.get(detail.type, detail.type or "TAX")
        key = (
            f"{self.provider}|{detail.type}|{detail.name}|{cache.decimal_text(percent)}"
        )
        # sudo: engine taxes are configuration derived from the engine's answer;
        # invoicing users may not create taxes themselves.
        taxes_sudo = self.env["account.tax"].sudo().with_context(active_test=False)
        tax_sudo = taxes_sudo.search(
            [("qtc_engine_key", "=", key), ("company_id", "=", company.id)], limit=1
        )
        if tax_sudo:
            if not tax_sudo.active:
                tax_sudo.active = True
            return tax_sudo
        name = (
            f"{PROVIDER_LABELS[self.provider]} {detail.name} {label} "
            f"{cache.decimal_text(percent)}%"
        )[:250]
        tax_sudo = taxes_sudo.search(
            [
                ("name", "=", name),
                ("company_id", "=", company.id),
                ("type_tax_use", "=", "sale"),
            ],
            limit=1,
        )
        if tax_sudo:
            tax_sudo.qtc_engine_key = key
            return tax_sudo
        default_tax = company.account_sale_tax_id
        values = {
            "name": name,
            "qtc_engine_key": key,
            "amount_type": "percent",
            "amount": float(percent),
            "type_tax_use": "sale",
            "price_include_override": "tax_excluded",
            "company_id": company.id,
            "invoice_label": f"{detail.name} {label}".strip(),
            "description": f"{detail.name} {label}".strip(),
        }
        if default_tax.tax_group_id:
            values["tax_group_id"] = default_tax.tax_group_id.id
        tax_sudo = taxes_sudo.create(values)
        account = default_tax.invoice_repartition_line_ids.filtered(
            lambda rep: rep.repartition_type == "tax"
        )[:1].account_id
        if account:
            tax_sudo.write(
                {
                    "invoice_repartition_line_ids": [
                        Command.update(rep.id, {"account_id": account.id})
                        for rep in tax_sudo.invoice_repartition_line_ids
                        if rep.repartition_type == "tax"
                    ],
                    "refund_repartition_line_ids": [
                        Command.update(rep.id, {"account_id": account.id})
                        for rep in tax_sudo.refund_repartition_line_ids
                        if rep.repartition_type == "tax"
                    ],
                }
            )
        self.env["qtc.trace"]._qtc_record(
            tax_sudo,
            "created",
            note=_("Tax for an engine jurisdiction rate"),
            backend=self,
        )
        return tax_sudo

    # ------------------------------------------------------------------ hooks

    def _qtc_test_connection(self):
        """AvaTax: ``GET /api/v2/utilities/ping`` with the credentials; rate
        table: the rates build a valid table."""
        if self.provider not in TAX_PROVIDERS:
            return super()._qtc_test_connection()
        self.ensure_one()
        engine = self._tax_engine()
        if self.provider == "tax_rate_table":
            return _("%(count)s tax rate(s) loaded.", count=len(self.tax_rate_ids))
        try:
            answer = engine.ping()
        except TaxEngineError as exc:
            raise UserError(_("AvaTax: %s", exc.message)) from None
        return _(
            "AvaTax answered (version %(version)s), credentials accepted.",
            version=answer.get("version") or "?",
        )

    def _qtc_outbound_hosts(self):
        if self.provider != "avatax":
            return super()._qtc_outbound_hosts()
        return const.AVATAX_HOSTS[self.environment]

    def _qtc_webhook_path(self):
        if self.provider not in TAX_PROVIDERS:
            return super()._qtc_webhook_path()
        return False  # tax engines send no webhooks
