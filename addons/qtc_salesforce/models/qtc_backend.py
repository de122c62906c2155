"""The Salesforce provider of ``qtc.backend``.

Three parts, in this file because they share the backend's connection:

- connection: OAuth token (JWT bearer or client credentials) cached per process
  and refreshed once on 401, every call through the base's ``_qtc_request``,
  the org's API usage read from ``Sforce-Limit-Info`` and respected;
- inbound: Outbound Messages (webhook hooks) and the delta sweep (one job per
  query page, so a page is committed with the watermark it allows);
- apply: Account -> company partner, Contact -> person, won Opportunity ->
  sale order (validated first, all problems at once), change orders, and the
  write-back of order and invoice status through sObject Collections.
"""

import hmac
import json
import logging
import re
import threading
from datetime import UTC, timedelta

from odoo import _, api, fields, models
from odoo.addons.qtc_connector_base.access import GROUP_MANAGER, check_action
from odoo.addons.qtc_connector_base.exceptions import (
    BusinessError,
    HttpBusinessError,
    RetryableError,
)
from odoo.addons.qtc_connector_base.lib import signature
from odoo.addons.qtc_connector_base.lib.job_function import job_function
from odoo.addons.qtc_connector_base.models.qtc_backend import (
    MANAGER_GROUP,
    InboundEvent,
)
from odoo.exceptions import UserError, ValidationError
from odoo.http import request
from odoo.tools import SQL, float_compare

from .. import const
from ..lib import jwt_bearer, mapper, outbound_message, pager, rest_errors, soql
from ..lib import writeback as writeback_lib

_logger = logging.getLogger(__name__)

# Access tokens live in process memory only, never in the database: keyed by
# (database, backend id); a process restart simply fetches a new one.
_tokens = {}
_tokens_lock = threading.Lock()
# Every 4xx but 429 comes back to us: Salesforce's error codes decide between
# retry (REQUEST_LIMIT_EXCEEDED answers 403), token refresh and a person.
_PASSTHROUGH = tuple(status for status in range(400, 500) if status != 429)
_API_VERSION_RE = re.compile(r"^v\d{2,3}\.\d$")
_ORG_ID_RE = re.compile(r"^00D[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")
_SALESFORCE_ID_RE = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


class WrongOrganization(ValueError):
    """An Outbound Message from an org this backend is not connected to."""


class QueryLocatorExpired(RetryableError):
    """A ``nextRecordsUrl`` Salesforce no longer knows: restart the query."""


def _aware(value):
    """Odoo's naive UTC datetime as an aware one (None stays None)."""
    return value.replace(tzinfo=UTC) if value else None


def _naive(value):
    """An aware datetime as Odoo stores it: naive UTC, whole seconds.

    Flooring is safe for watermarks: the next query re-reads the rest of that
    second and deduplication absorbs it.
    """
    if not value:
        return None
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def _secret_field(key, string, help_text, text=False):
    field_class = fields.Text if text else fields.Char
    return field_class(
        string=string,
        qtc_secret=key,
        compute="_compute_qtc_secrets",
        inverse="_inverse_qtc_secrets",
        groups=MANAGER_GROUP,
        help=help_text,
    )


class QtcBackend(models.Model):
    _inherit = "qtc.backend"

    provider = fields.Selection(
        selection_add=[(const.PROVIDER, "Salesforce")],
        ondelete={const.PROVIDER: "set default"},
    )
    # ---------------------------------------------------------- connection
    salesforce_instance_url = fields.Char(
        string="Instance URL",
        help="The org's My Domain URL, e.g. https://acme.my.salesforce.com "
        "(the client credentials flow requests its token there).",
    )
    salesforce_api_version = fields.Char(string="API version", default="v61.0")
    salesforce_auth_flow = fields.Selection(
        [
            ("jwt_bearer", "OAuth 2.0 JWT bearer"),
            ("client_credentials", "OAuth 2.0 client credentials"),
        ],
        string="Authentication",
        default="jwt_bearer",
    )
    salesforce_consumer_key = fields.Char(
        string="Consumer key", help="The connected app's consumer key (client id)."
    )
    salesforce_username = fields.Char(
        string="Integration user",
        help="Username the JWT bearer flow acts as (pre-authorised in the app).",
    )
    salesforce_private_key = _secret_field(
        "salesforce_private_key",
        "Private key (PEM)",
        "Write-only. RSA key (2048 bits or more) whose certificate is uploaded "
        "to the connected app; signs the JWT bearer assertion.",
        text=True,
    )
    salesforce_client_secret = _secret_field(
        "salesforce_client_secret",
        "Consumer secret",
        "Write-only. Used by the client credentials flow.",
    )
    salesforce_org_id = fields.Char(
        string="Organization id",
        help="18-character org id (Setup > Company Information). Outbound "
        "Messages from any other org are refused.",
    )
    salesforce_outbound_token = _secret_field(
        "salesforce_outbound_token",
        "Outbound Message token",
        "Write-only. A long random value; the Outbound Message endpoint URL "
        "ends with it. Replace it to revoke the URL.",
    )
    salesforce_api_reserve_percent = fields.Integer(
        string="API reserve (%)",
        default=10,
        help="Stop calling when only this share of the org's daily API "
        "allowance is left, so other integrations keep theirs.",
    )
    salesforce_api_used = fields.Integer(string="API calls used today", readonly=True)
    salesforce_api_max = fields.Integer(string="Daily API allowance", readonly=True)
    salesforce_api_usage_at = fields.Datetime(string="API usage read at", readonly=True)
    # ---------------------------------------------------------------- sync
    salesforce_opportunity_filter = fields.Char(
        string="Opportunity filter",
        default=soql.DEFAULT_OPPORTUNITY_FILTER,
        help="Conditions joined by AND, e.g. IsWon = true AND Type IN "
        "('New', 'Renewal'). Blank: every opportunity.",
    )
    salesforce_confirm_orders = fields.Boolean(
        string="Confirm orders",
        default=True,
        help="Confirm imported orders at once, so service products create "
        "their projects, tasks and milestones.",
    )
    salesforce_read_schedules = fields.Boolean(
        string="Read line item schedules",
        default=True,
        help="Read OpportunityLineItemSchedule of milestone lines (one API "
        "call per opportunity) and turn each installment into a milestone.",
    )
    salesforce_tax_id_field = fields.Char(
        string="Account tax id field", help="e.g. VAT_Number__c; blank if none."
    )
    salesforce_require_tax_id = fields.Boolean(
        string="Tax id required",
        help="Refuse opportunities whose account has no tax id.",
    )
    salesforce_billing_type_field = fields.Char(
        string="Line billing type field",
        default=soql.DEFAULT_BILLING_TYPE_FIELD,
        help="OpportunityLineItem field saying Milestone / Fixed / Time; "
        "blank if the org has none (every line is fixed price).",
    )
    salesforce_payment_term_field = fields.Char(
        string="Opportunity payment term field",
        help="e.g. Payment_Terms__c, translated by the value map "
        f"{const.MAP_PAYMENT_TERM}; blank for the customer's terms.",
    )
    salesforce_watermark = fields.Datetime(
        string="Opportunity watermark",
        readonly=True,
        help="SystemModstamp of the last opportunity stored by a sweep.",
    )
    salesforce_account_watermark = fields.Datetime(readonly=True)
    salesforce_contact_watermark = fields.Datetime(readonly=True)
    salesforce_last_sweep_at = fields.Datetime(
        string="Last complete sweep", readonly=True
    )
    salesforce_sweep_warn_hours = fields.Integer(
        string="Warn after (hours)",
        default=6,
        help="Warn when no sweep completed for this long: Outbound Messages are "
        "dropped by Salesforce after 24 h and the sweep is the safety net.",
    )
    salesforce_sweep_warning = fields.Char(compute="_compute_salesforce_sweep_warning")
    # ----------------------------------------------------------- write-back
    salesforce_writeback_enabled = fields.Boolean(string="Write back", default=True)
    salesforce_order_field = fields.Char(
        string="Opportunity order field", default="Odoo_Order__c"
    )
    salesforce_invoice_status_field = fields.Char(
        string="Opportunity invoice status field", default="Odoo_Invoice_Status__c"
    )
    salesforce_balance_field = fields.Char(
        string="Opportunity balance field", default="Odoo_Balance_Due__c"
    )
    salesforce_account_balance_field = fields.Char(
        string="Account balance field",
        default="Odoo_Balance_Due__c",
        help="Open balance of the customer; blank to leave accounts alone.",
    )

    # ------------------------------------------------------------- computes

    @api.depends(
        "provider", "state", "salesforce_last_sweep_at", "salesforce_sweep_warn_hours"
    )
    def _compute_salesforce_sweep_warning(self):
        now = fields.Datetime.now()
        for backend in self:
            warning = False
            if backend.provider == const.PROVIDER and backend.state == "active":
                last = backend.salesforce_last_sweep_at
                hours = backend.salesforce_sweep_warn_hours
                if not last:
                    warning = _("No delta sync has completed yet.")
                elif hours > 0 and last < now - timedelta(hours=hours):
                    warning = _(
                        "The last complete delta sync was %(hours)s hours ago "
                        "(threshold %(limit)s h): missed Outbound Messages are not "
                        "being picked up.",
                        hours=int((now - last).total_seconds() // 3600),
                        limit=hours,
                    )
            backend.salesforce_sweep_warning = warning

    @api.constrains(
        "provider",
        "salesforce_api_version",
        "salesforce_org_id",
        "salesforce_instance_url",
        "salesforce_opportunity_filter",
        "salesforce_tax_id_field",
        "salesforce_billing_type_field",
        "salesforce_payment_term_field",
        "salesforce_order_field",
        "salesforce_invoice_status_field",
        "salesforce_balance_field",
        "salesforce_account_balance_field",
        "salesforce_api_reserve_percent",
        "environment",
    )
    def _check_salesforce_settings(self):
        for backend in self.filtered(lambda b: b.provider == const.PROVIDER):
            problems = backend._salesforce_setting_problems()
            if problems:
                raise ValidationError("\n".join(problems))

    def _salesforce_setting_problems(self):
        self.ensure_one()
        problems = []
        version = self.salesforce_api_version or ""
        if not _API_VERSION_RE.match(version):
            problems.append(_("API version must look like v61.0."))
        if self.salesforce_org_id and not _ORG_ID_RE.match(self.salesforce_org_id):
            problems.append(_("The organization id is a 15 or 18 character id (00D…)."))
        if self.salesforce_instance_url:
            try:
                jwt_bearer.normalize_audience(self.salesforce_instance_url)
            except jwt_bearer.JwtBearerError:
                problems.append(_("The instance URL must be an https URL."))
            else:
                refused = self._qtc_outbound_url_problem(self.salesforce_instance_url)
                if refused:
                    problems.append(
                        _(
                            "Instance URL: %(problem)s The instance URL is your "
                            "org's My Domain URL, e.g. "
                            "https://acme.my.salesforce.com.",
                            problem=refused,
                        )
                    )
        try:
            soql.parse_filter(self.salesforce_opportunity_filter)
        except soql.SoqlError as exc:
            problems.append(_("Opportunity filter: %s", exc))
        for fname in (
            "salesforce_tax_id_field",
            "salesforce_billing_type_field",
            "salesforce_payment_term_field",
            "salesforce_order_field",
            "salesforce_invoice_status_field",
            "salesforce_balance_field",
            "salesforce_account_balance_field",
        ):
            if self[fname]:
                try:
                    soql.validate_identifier(self[fname])
                except soql.SoqlError:
                    problems.append(
                        _(
                            "%(field)s: %(value)r is not a Salesforce API name.",
                            field=self._fields[fname].string,
                            value=self[fname],
                        )
                    )
        if not 0 <= self.salesforce_api_reserve_percent < 100:
            problems.append(_("The API reserve is a percentage from 0 to 99."))
        return problems

    # -------------------------------------------------------------- actions

    def action_salesforce_sync_now(self):
        """Queue a delta sweep of accounts, contacts and opportunities (QTC
        Managers)."""
        check_action(self, GROUP_MANAGER, "write", _("start a Salesforce sync"))
        for backend in self:
            if backend.provider != const.PROVIDER:
                continue
            backend._salesforce_enqueue_sweep()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Salesforce"),
                "message": _("Delta sync queued."),
                "type": "info",
            },
        }

    # ============================================================ connection

    def _salesforce_state_write(self, values):
        """Write technical state (watermarks, API usage) without ``write()``.

        ``write()`` on a backend clears the registry caches and rebuilds its
        HTTP client; state that moves on every call or page must not.
        """
        self.ensure_one()
        self.flush_recordset(list(values))
        assignments = SQL(", ").join(
            SQL("%s = %s", SQL.identifier(name), value)
            for name, value in values.items()
        )
        self.env.cr.execute(
            SQL("UPDATE qtc_backend SET %s WHERE id = %s", assignments, self.id)
        )
        self.invalidate_recordset(list(values))

    def _salesforce_token_key(self):
        return (self.env.cr.dbname, self.id)

    def _salesforce_forget_token(self):
        """Drop the cached access token (the next call fetches a new one)."""
        with _tokens_lock:
            for backend in self:
                _tokens.pop(backend._salesforce_token_key(), None)

    def _salesforce_token(self, refresh=False):
        """The cached access token, fetched when absent or ``refresh``.

        :returns: a ``jwt_bearer.AccessToken``
        :raises BusinessError: credentials missing or refused (configuration)
        """
        self.ensure_one()
        key = self._salesforce_token_key()
        if not refresh:
            with _tokens_lock:
                token = _tokens.get(key)
            if token:
                return token
        token = self._salesforce_fetch_token()
        with _tokens_lock:
            _tokens[key] = token
        return token

    def _salesforce_fetch_token(self):
        self.ensure_one()
        try:
            if self.salesforce_auth_flow == "client_credentials":
                url = jwt_bearer.token_url(self.salesforce_instance_url or "")
                data = jwt_bearer.client_credentials_body(
                    self.salesforce_consumer_key or "",
                    self._qtc_get_secret("salesforce_client_secret"),
                )
            else:
                login = jwt_bearer.audience_for(self.environment == "sandbox")
                assertion = jwt_bearer.build_assertion(
                    self.salesforce_consumer_key or "",
                    self.salesforce_username or "",
                    self._qtc_get_secret("salesforce_private_key"),
                    audience=login,
                )
                url = jwt_bearer.token_url(login)
                data = jwt_bearer.token_request_body(assertion)
        except jwt_bearer.JwtBearerError as exc:
            raise BusinessError(
                _("Salesforce authentication is not configured: %s", exc),
                category="configuration",
                suggested_action=_("Complete the backend's credentials."),
            ) from None
        response = self._qtc_request("POST", url, data=data, passthrough=_PASSTHROUGH)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        try:
            return jwt_bearer.parse_token_response(payload)
        except jwt_bearer.TokenError as exc:
            raise BusinessError(
                _("Salesforce refused the credentials: %s", exc),
                category="configuration",
                problems=[str(exc)],
                suggested_action=_(
                    "Check the connected app, the integration user and the key."
                ),
            ) from None

    def _salesforce_check_throttle(self):
        """Refuse to call while only the reserve of the daily allowance is left.

        :raises RetryableError: with a delay, instead of spending the reserve
        """
        used, maximum = self.salesforce_api_used, self.salesforce_api_max
        read_at = self.salesforce_api_usage_at
        if not maximum or not read_at:
            return
        fresh_after = fields.Datetime.now() - timedelta(
            seconds=const.USAGE_READING_MAX_AGE_SECONDS
        )
        if read_at < fresh_after:
            return  # an old reading: let this call refresh it
        if soql.should_throttle(
            used, maximum, self.salesforce_api_reserve_percent / 100
        ):
            raise RetryableError(
                _(
                    "Salesforce daily API allowance nearly used (%(used)s of "
                    "%(max)s); waiting for it to recover.",
                    used=used,
                    max=maximum,
                ),
                delay=const.THROTTLE_DELAY_SECONDS,
            )

    def _salesforce_note_usage(self, response):
        header = response.headers.get("Sforce-Limit-Info")
        if not header:
            return
        try:
            used, maximum = soql.parse_limit_info(header)
        except soql.LimitInfoError:
            _logger.debug("unreadable Sforce-Limit-Info header ignored")
            return
        self._salesforce_state_write(
            {
                "salesforce_api_used": used,
                "salesforce_api_max": maximum,
                "salesforce_api_usage_at": fields.Datetime.now(),
            }
        )

    def _salesforce_url(self, path, token):
        instance = token.instance_url or self.salesforce_instance_url
        if path.startswith("/services/"):
            return f"{instance}{path}"
        return f"{instance}/services/data/{self.salesforce_api_version}/{path}"

    def _salesforce_call(self, method, path, *, throttle=True, headers=None, **kwargs):
        """One REST call: token, usage check, one refresh on 401, error mapping.

        :param path: ``query``, ``composite/sobjects``... (under the data API
            of the configured version) or an absolute ``/services/...`` path
        :returns: the ``requests.Response`` (2xx)
        :raises RetryableError: throttled, 5xx, timeouts, retryable error codes
            (``REQUEST_LIMIT_EXCEEDED``, ``UNABLE_TO_LOCK_ROW``...)
        :raises QueryLocatorExpired: a query locator Salesforce dropped
        :raises BusinessError: refused credentials or a request a person must fix
        """
        self.ensure_one()
        if throttle:
            self._salesforce_check_throttle()
        token = self._salesforce_token()
        for attempt in (1, 2):
            response = self._qtc_request(
                method,
                self._salesforce_url(path, token),
                headers={
                    **(headers or {}),
                    "Authorization": f"Bearer {token.access_token}",
                },
                passthrough=_PASSTHROUGH,
                **kwargs,
            )
            self._salesforce_note_usage(response)
            if response.status_code != 401 or attempt == 2:
                break
            # Tokens expire silently (session timeout): one new token, one retry.
            token = self._salesforce_token(refresh=True)
        if response.status_code >= 400:
            self._salesforce_raise(method, path, response)
        return response

    def _salesforce_raise(self, method, path, response):
        status = response.status_code
        errors = rest_errors.parse_error_body(response.content)
        summary = "; ".join(f"{e.error_code}: {e.message}" for e in errors)[:500]
        where = f"{method} {path.split('?')[0]}"
        if any(error.restart_query for error in errors):
            raise QueryLocatorExpired(f"{where}: {summary}")
        if any(error.retryable for error in errors):
            limit = any(e.error_code == "REQUEST_LIMIT_EXCEEDED" for e in errors)
            raise RetryableError(
                f"{where} answered {status}: {summary}",
                delay=const.THROTTLE_DELAY_SECONDS if limit else None,
            )
        if status == 401 or any(error.auth_failure for error in errors):
            self._salesforce_forget_token()
            raise BusinessError(
                _("Salesforce refused the access token twice: %s", summary),
                category="configuration",
                suggested_action=_("Check the integration user's access."),
            )
        raise HttpBusinessError(
            f"{where} was rejected with {status}",
            status=status,
            body_excerpt=summary,
            problems=[f"{e.error_code}: {e.message}" for e in errors],
        )

    def _salesforce_query(self, soql_text):
        """Run one query and return all its records (for small lookups).

        :raises BusinessError: an answer not shaped as a query result
        """
        records = []
        response = self._salesforce_call("GET", "query", params={"q": soql_text})
        while True:
            try:
                page = pager.parse_page(response.json(), modstamp_field=None)
            except (ValueError, pager.QueryResultError) as exc:
                raise BusinessError(
                    _("Salesforce answered a query with an unreadable result."),
                    category="remote_rejected",
                    problems=[str(exc)],
                ) from None
            records.extend(page.records)
            if not page.next_records_url:
                return records
            response = self._salesforce_call("GET", page.next_records_url)

    # ================================================================ hooks

    def _qtc_binding_models(self):
        if self.provider != const.PROVIDER:
            return super()._qtc_binding_models()
        return dict(const.BINDING_MODELS)

    def _qtc_test_connection(self):
        if self.provider != const.PROVIDER:
            return super()._qtc_test_connection()
        self.ensure_one()
        self._salesforce_forget_token()
        response = self._salesforce_call("GET", "limits", throttle=False)
        try:
            daily = response.json()["DailyApiRequests"]
            remaining, maximum = int(daily["Remaining"]), int(daily["Max"])
        except (ValueError, KeyError, TypeError):
            raise UserError(
                _("Connected, but the limits resource answered unexpectedly.")
            ) from None
        return _(
            "Connected to %(url)s: %(remaining)s of %(max)s daily API requests "
            "remaining.",
            url=self._salesforce_token().instance_url,
            remaining=remaining,
            max=maximum,
        )

    def _qtc_outbound_hosts(self):
        if self.provider != const.PROVIDER:
            return super()._qtc_outbound_hosts()
        return const.OUTBOUND_HOSTS

    def _qtc_webhook_path(self):
        if self.provider != const.PROVIDER:
            return super()._qtc_webhook_path()
        self.ensure_one()
        return f"/qtc/salesforce/{self.id}/outbound/<outbound token>"

    def _qtc_webhook_verify(self, body, headers, config):
        """Outbound Messages are not signed: the secret token in the URL path
        (passed by the controller in the context) authenticates them.

        Compared in constant time; a backend without a token refuses all.
        """
        if self.provider != const.PROVIDER:
            return super()._qtc_webhook_verify(body, headers, config)
        self.ensure_one()
        given = self.env.context.get("salesforce_url_token") or ""
        expected = self._qtc_get_secret("salesforce_outbound_token", required=False)
        if not expected:
            raise signature.SignatureError("no outbound token configured")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise signature.SignatureError("outbound token does not match")
        return None

    def _qtc_webhook_parse(self, body, headers):
        """One event per Notification: its id is the idempotency key, its type
        ``<sObject>.notification``, its payload the sObject's fields as JSON.

        :raises WrongOrganization: sent by another org (nothing is stored)
        :raises ValueError: not an acceptable Outbound Message
        """
        if self.provider != const.PROVIDER:
            return super()._qtc_webhook_parse(body, headers)
        self.ensure_one()
        try:
            message = outbound_message.parse_notifications(
                body, max_bytes=self.max_body_bytes
            )
        except outbound_message.OutboundMessageError as exc:
            raise ValueError(str(exc)) from None
        org_id = self.salesforce_org_id
        if not org_id or message.organization_id[:15] != org_id[:15]:
            raise WrongOrganization(
                f"OrganizationId {message.organization_id} is not this backend's org"
            )
        return [
            InboundEvent(
                notification.id,
                f"{notification.sobject.type}.{const.CHANNEL_NOTIFICATION}",
                json.dumps(notification.sobject.as_record(), sort_keys=True),
            )
            for notification in message.notifications
        ]

    def _qtc_event_resources(self, events):
        """The Salesforce record an event is about and the account it belongs
        to (``AccountId`` when the message carries it): two events of one
        account (its customer, its opportunities' orders) are never applied at
        the same time."""
        if self.provider != const.PROVIDER:
            return super()._qtc_event_resources(events)
        self.ensure_one()
        found = []
        for event in events:
            try:
                record = json.loads(event.payload or "")
            except ValueError:
                record = None
            names = []
            if isinstance(record, dict):
                for key in ("Id", "AccountId"):
                    value = record.get(key)
                    if isinstance(value, str) and value.strip():
                        names.append(f"salesforce:{self.id}:{value.strip()[:15]}")
            found.append(names)
        return found

    def _qtc_webhook_answer(self, events, stored):
        if self.provider != const.PROVIDER:
            return super()._qtc_webhook_answer(events, stored)
        return request.make_response(
            outbound_message.ack_response(True),
            headers=[("Content-Type", const.SOAP_CONTENT_TYPE)],
        )

    def _qtc_webhook_error(self, status, message):
        if self.provider != const.PROVIDER:
            return super()._qtc_webhook_error(status, message)
        code = "Server" if status >= 500 else "Client"
        return request.make_response(
            outbound_message.soap_fault(message, code),
            headers=[("Content-Type", const.SOAP_CONTENT_TYPE)],
            status=status,
        )

    def _qtc_handle_event(self, event):
        """Apply an Account, Contact or Opportunity event.

        A notification carries only the fields chosen in Setup: the full record
        (with the account and line items of an opportunity) is read first. A
        record read by a sweep is applied as it is.
        """
        if self.provider != const.PROVIDER:
            return super()._qtc_handle_event(event)
        self.ensure_one()
        sobject_type, _sep, channel = (event.event_type or "").partition(".")
        handlers = {
            "Account": self._salesforce_apply_account,
            "Contact": self._salesforce_apply_contact,
            "Opportunity": self._salesforce_apply_opportunity,
        }
        handler = handlers.get(sobject_type)
        if not handler or channel not in (
            const.CHANNEL_NOTIFICATION,
            const.CHANNEL_SYNC,
        ):
            return "ignored"
        try:
            record = json.loads(event.payload or "")
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise BusinessError(
                _("Event payload is not a JSON record."), category="data"
            )
        if channel == const.CHANNEL_NOTIFICATION:
            record = self._salesforce_fetch_record(sobject_type, record.get("Id"))
            if record is None:
                return "ignored"
        return handler(record)

    def _qtc_replay_payload(self, event):
        """A replay of a record a sweep stored reads it again from Salesforce
        (as the sweep's query does) and applies that version, never a stored
        payload a person may have edited. A notification needs nothing more:
        its handler always reads the record from Salesforce.

        :returns: the record as Salesforce has it now (JSON text), or ``None``
        :raises BusinessError: the record is gone or no longer matches the
            backend's filters (nothing is applied)
        """
        if self.provider != const.PROVIDER:
            return super()._qtc_replay_payload(event)
        self.ensure_one()
        sobject_type, _sep, channel = (event.event_type or "").partition(".")
        if channel != const.CHANNEL_SYNC or sobject_type not in (
            "Account",
            "Contact",
            "Opportunity",
        ):
            return None
        try:
            stored = json.loads(event.payload or "")
        except ValueError:
            stored = None
        record_id = stored.get("Id") if isinstance(stored, dict) else None
        record = self._salesforce_fetch_record(sobject_type, record_id)
        if record is None:
            raise BusinessError(
                _(
                    "Salesforce %(type)s %(id)s is gone or no longer matches this "
                    "backend's filters: nothing was replayed.",
                    type=sobject_type,
                    id=record_id,
                ),
                category="data",
                suggested_action=_("Ignore the exception if that is expected."),
            )
        return json.dumps(record, sort_keys=True)

    # ================================================================ sweep

    @api.model
    def _salesforce_cron_sweep(self):
        """Cron target: queue a sweep of every active Salesforce backend."""
        backends = self.search(
            [("provider", "=", const.PROVIDER), ("state", "=", "active")]
        )
        for backend in backends:
            backend._salesforce_enqueue_sweep()
        return len(backends)

    def _salesforce_enqueue_sweep(self):
        """Queue the first page of a sweep, unless a sweep is still running.

        :returns: the ``qtc.job`` of the sweep (new or in flight)
        """
        self.ensure_one()
        # Boundary (queue): a manager's Sync now or the cron looks for a sweep
        # in flight and queues one; the sweep runs as the technical user.
        jobs = self.env["qtc.job"].sudo()
        running = jobs.search(
            [
                ("backend_id", "=", self.id),
                ("method_name", "=", "_salesforce_sync_page"),
                ("state", "in", ("pending", "started")),
            ],
            limit=1,
        )
        if running:
            return running
        return jobs._qtc_enqueue(
            self,
            "_salesforce_sync_page",
            [const.SYNC_OBJECTS[0], None, fields.Datetime.to_string(_now())],
            name=_("Salesforce sweep: %s", const.SYNC_OBJECTS[0]),
            backend=self,
            identity_key=f"salesforce:sweep:{self.id}",
            # One page of a backend's sweep at a time: each moves a watermark.
            resources=[f"salesforce.sweep:{self.id}"],
            # The sweep applies the sender's records: the technical user runs
            # it, whoever pressed Sync now.
            user=self._qtc_technical_user(),
        )

    def _salesforce_delta_query(self, sobject, watermark):
        tax_field = self.salesforce_tax_id_field or None
        if sobject == "Account":
            return soql.account_query(watermark, tax_id_field=tax_field)
        if sobject == "Contact":
            return soql.contact_query(watermark)
        return self._salesforce_opportunity_query(watermark)

    def _salesforce_opportunity_query(self, watermark, extra_filter=None):
        extra = ["Pricebook2Id"]
        if self.salesforce_payment_term_field:
            extra.append(self.salesforce_payment_term_field)
        conditions = [self.salesforce_opportunity_filter or "", extra_filter or ""]
        return soql.opportunity_query(
            watermark,
            opportunity_filter=" AND ".join(c for c in conditions if c.strip()),
            billing_type_field=self.salesforce_billing_type_field or None,
            tax_id_field=self.salesforce_tax_id_field or None,
            extra_fields=tuple(extra),
        )

    @job_function
    def _salesforce_sync_page(self, sobject, next_url, started_at):
        """Job: read one page of ``sobject``'s delta query and store its records.

        The page's events and the watermark it allows commit together in this
        job's transaction; the next page is another job. A failure on page n
        leaves the watermark at the end of page n-1, and the retry reads on.

        :param next_url: the ``nextRecordsUrl`` to read, ``None`` for page one
        :param started_at: when the sweep began (becomes the last sweep time)
        """
        self.ensure_one()
        watermark_field = const.WATERMARK_FIELDS[sobject]
        current = _aware(self[watermark_field])
        headers = {"Sforce-Query-Options": f"batchSize={const.QUERY_BATCH_SIZE}"}
        try:
            if next_url:
                response = self._salesforce_call("GET", next_url, headers=headers)
            else:
                query = self._salesforce_delta_query(sobject, current)
                response = self._salesforce_call(
                    "GET", "query", params={"q": query}, headers=headers
                )
        except QueryLocatorExpired:
            # The cursor expired between pages: read again from the watermark.
            self._salesforce_enqueue_page(sobject, None, started_at)
            return f"{sobject}: query locator expired, restarted from the watermark"
        try:
            page = pager.parse_page(response.json())
        except (ValueError, pager.QueryResultError) as exc:
            raise BusinessError(
                _("Salesforce answered the %s query with an unreadable page.", sobject),
                category="remote_rejected",
                problems=[str(exc)],
            ) from None
        events = [
            InboundEvent(
                f"sync:{record['attributes']['type']}:{record.get('Id')}:"
                f"{record.get('SystemModstamp')}"[:255],
                f"{record['attributes']['type']}.{const.CHANNEL_SYNC}",
                json.dumps(record, sort_keys=True),
            )
            for record in page.records
        ]
        stored = self._qtc_store_events(events) if events else {}
        watermark = pager.watermark_after(current, [page], [page.index])
        if watermark and watermark != current:
            self._salesforce_state_write({watermark_field: _naive(watermark)})
        if page.next_records_url:
            self._salesforce_enqueue_page(sobject, page.next_records_url, started_at)
        else:
            position = const.SYNC_OBJECTS.index(sobject)
            if position + 1 < len(const.SYNC_OBJECTS):
                self._salesforce_enqueue_page(
                    const.SYNC_OBJECTS[position + 1], None, started_at
                )
            else:
                self._salesforce_state_write({"salesforce_last_sweep_at": started_at})
        return f"{sobject}: {len(page.records)} records, {len(stored)} new"

    def _salesforce_enqueue_page(self, sobject, next_url, started_at):
        # Boundary (queue): see _salesforce_enqueue_sweep.
        return (
            self.env["qtc.job"]
            .sudo()
            ._qtc_enqueue(
                self,
                "_salesforce_sync_page",
                [sobject, next_url, started_at],
                name=_("Salesforce sweep: %s", sobject),
                backend=self,
                identity_key=f"salesforce:sync:{self.id}:{sobject}:{next_url or '-'}",
                resources=[f"salesforce.sweep:{self.id}"],
                user=self._qtc_technical_user(),
            )
        )

    # ================================================================ fetch

    def _salesforce_fetch_record(self, sobject_type, record_id):
        """The full record of a notification, as a sweep would read it.

        An opportunity is read with its account and line items in one query
        (and the opportunity filter applies: one no longer won is not found).

        :returns: the record dict, or ``None`` when it no longer exists or no
            longer matches
        """
        if not isinstance(record_id, str) or not _SALESFORCE_ID_RE.match(record_id):
            raise BusinessError(
                _("The notification has no valid record Id."), category="data"
            )
        id_filter = f"Id = {soql.quote_string(record_id)}"
        if sobject_type == "Opportunity":
            query = self._salesforce_opportunity_query(None, id_filter)
        else:
            tax_field = self.salesforce_tax_id_field
            names = list(
                soql.ACCOUNT_FIELDS
                if sobject_type == "Account"
                else soql.CONTACT_FIELDS
            )
            if sobject_type == "Account" and tax_field:
                names.append(tax_field)
            query = soql.build_delta_query(
                sobject_type,
                names,
                conditions=(soql.Condition("Id", "=", record_id),),
            )
        records = self._salesforce_query(query)
        return records[0] if records else None

    # ================================================================ apply

    def _salesforce_mapping_config(self):
        try:
            return mapper.MappingConfig(
                tax_id_field=self.salesforce_tax_id_field or None,
                billing_type_field=self.salesforce_billing_type_field or None,
                default_currency=self.company_id.currency_id.name,
            )
        except ValueError as exc:
            raise BusinessError(
                _("The backend's mapping settings are invalid: %s", exc),
                category="configuration",
            ) from None

    def _salesforce_writeback_fields(self):
        return tuple(
            name
            for name in (
                self.salesforce_order_field,
                self.salesforce_invoice_status_field,
                self.salesforce_balance_field,
                self.salesforce_account_balance_field,
            )
            if name
        )

    def _salesforce_hash(self, record):
        """Content hash of a record, blind to our own write-back fields (so
        their echo hashes like the record before it)."""
        return mapper.payload_hash(
            record, ignore_fields=self._salesforce_writeback_fields()
        )

    def _salesforce_skip(self, binding, record, kind, updated_at):
        """Record that a delivery changed nothing; keep the newest stamp."""
        if (
            kind == "identical"
            and updated_at
            and (
                not binding.external_updated_at
                or updated_at > binding.external_updated_at
            )
        ):
            binding.external_updated_at = updated_at
        self.env["qtc.trace"]._qtc_record(
            record,
            "skipped",
            note=_(
                "%(type)s %(id)s: %(kind)s delivery",
                type=binding.external_type,
                id=binding.external_id,
                kind=kind,
            ),
            backend=self,
        )
        return f"skipped: {kind}"

    def _salesforce_bind(self, external_type, external_id, record, updated_at, digest):
        binding = self.env["qtc.binding"]._qtc_bind(
            self, external_type, external_id, record, updated_at=updated_at
        )
        binding.payload_hash = digest
        return binding

    # -------------------------------------------------------------- account

    def _salesforce_apply_account(self, record):
        """Create or update the company partner of an Account record.

        :returns: a short result text
        """
        partner, outcome = self._salesforce_upsert_account(record)
        return f"Account {partner.display_name}: {outcome}"

    def _salesforce_upsert_account(self, record):
        try:
            account = mapper.map_account(record, self._salesforce_mapping_config())
        except mapper.MappingError as exc:
            raise BusinessError(
                _("Account %s cannot be read.", record.get("Id")),
                category="data",
                problems=list(exc.problems),
            ) from None
        bindings = self.env["qtc.binding"]
        binding = bindings._qtc_lookup(self, const.BINDING_ACCOUNT, account.external_id)
        partner = (
            self.env["res.partner"].browse(binding.res_id).exists() if binding else None
        )
        digest = self._salesforce_hash(record)
        updated_at = _naive(account.updated_at)
        if partner:
            kind = binding._qtc_change_kind(updated_at, digest=digest)
            if kind != "newer":
                return partner, self._salesforce_skip(
                    binding, partner, kind, updated_at
                )
        values = self._salesforce_partner_values(account)
        if partner:
            partner.write(values)
            operation = "updated"
        else:
            partner = self.env["res.partner"].create(values)
            operation = "created"
        self._salesforce_bind(
            const.BINDING_ACCOUNT, account.external_id, partner, updated_at, digest
        )
        self.env["qtc.trace"]._qtc_record(partner, operation, backend=self)
        return partner, operation

    def _salesforce_partner_values(self, account):
        street, _sep, street2 = (account.billing_street or "").partition("\n")
        country = self._salesforce_country(account.billing_country_code)
        state = self.env["res.country.state"]
        if country and account.billing_state_code:
            state = state.search(
                [
                    ("country_id", "=", country.id),
                    ("code", "=", account.billing_state_code),
                ],
                limit=1,
            )
        return {
            "name": account.name or account.external_id,
            "is_company": True,
            "company_type": "company",
            "street": street.strip() or False,
            "street2": street2.strip() or False,
            "city": account.billing_city or False,
            "zip": account.billing_zip or False,
            "country_id": country.id if country else False,
            "state_id": state.id or False,
            "phone": account.phone or False,
            "website": account.website or False,
            "vat": account.tax_id or False,
        }

    def _salesforce_country(self, code):
        if not code:
            return None
        return (
            self.env["res.country"].search([("code", "=", code.upper())], limit=1)
            or None
        )

    def _salesforce_account_partner(self, account_id):
        """The partner bound to ``account_id``, reading the Account when it is
        not bound yet (a contact or opportunity may arrive first).

        :raises BusinessError: the account cannot be found (unknown customer)
        """
        partner = self.env["qtc.binding"]._qtc_to_internal(
            self, const.BINDING_ACCOUNT, account_id
        )
        if partner:
            return partner
        record = self._salesforce_fetch_record("Account", account_id)
        if record is None:
            raise BusinessError(
                _("Account %s was not found in Salesforce.", account_id),
                category="unknown_customer",
                external_ref=(const.BINDING_ACCOUNT, account_id),
                suggested_action=_("Link it to an existing customer, then retry."),
            )
        return self._salesforce_upsert_account(record)[0]

    # -------------------------------------------------------------- contact

    def _salesforce_apply_contact(self, record):
        """Create or update the person of a Contact, under its account."""
        try:
            contact = mapper.map_contact(record)
        except mapper.MappingError as exc:
            raise BusinessError(
                _("Contact %s cannot be read.", record.get("Id")),
                category="data",
                problems=list(exc.problems),
            ) from None
        bindings = self.env["qtc.binding"]
        binding = bindings._qtc_lookup(self, const.BINDING_CONTACT, contact.external_id)
        person = (
            self.env["res.partner"].browse(binding.res_id).exists() if binding else None
        )
        digest = self._salesforce_hash(record)
        updated_at = _naive(contact.updated_at)
        if person:
            kind = binding._qtc_change_kind(updated_at, digest=digest)
            if kind != "newer":
                return self._salesforce_skip(binding, person, kind, updated_at)
        parent = (
            self._salesforce_account_partner(contact.account_external_id)
            if contact.account_external_id
            else self.env["res.partner"]
        )
        values = {
            "name": contact.name or contact.email or contact.external_id,
            "parent_id": parent.id or False,
            "type": "contact",
            "email": contact.email or False,
            "phone": contact.phone or False,
            "mobile": contact.mobile or False,
            "function": contact.title or False,
        }
        if person:
            person.write(values)
            operation = "updated"
        else:
            person = self.env["res.partner"].create(values)
            operation = "created"
        self._salesforce_bind(
            const.BINDING_CONTACT, contact.external_id, person, updated_at, digest
        )
        self.env["qtc.trace"]._qtc_record(person, operation, backend=self)
        return f"Contact {person.display_name}: {operation}"

    # ---------------------------------------------------------- opportunity

    def _salesforce_apply_opportunity(self, record, apply_added=False):
        """Turn a won opportunity into a sale order, or update it.

        Validation runs before anything is created: every problem of the
        opportunity in one business exception. A draft order is updated; a
        change to a confirmed order raises a ``change_order`` exception listing
        the differences, unless ``apply_added`` (the finance user's action)
        asks to add the new lines.
        """
        config = self._salesforce_mapping_config()
        engagement = self._salesforce_map_engagement(record, config)
        bindings = self.env["qtc.binding"]
        binding = bindings._qtc_lookup(
            self, const.BINDING_OPPORTUNITY, engagement.external_id
        )
        order = (
            self.env["sale.order"].browse(binding.res_id).exists() if binding else None
        )
        digest = self._salesforce_hash(record)
        updated_at = _naive(engagement.updated_at)
        if order and not apply_added:
            kind = binding._qtc_change_kind(updated_at, digest=digest)
            if kind != "newer":
                return self._salesforce_skip(binding, order, kind, updated_at)
        engagement = self._salesforce_with_schedules(record, engagement, config)
        resolved = self._salesforce_validate(engagement, record, config, order)
        partner = self._salesforce_opportunity_partner(engagement, record)
        values = self._salesforce_order_values(engagement, partner, resolved)
        if order and order.state == "sale":
            return self._salesforce_change_order(
                order, engagement, resolved, digest, updated_at, apply_added
            )
        if order and order.state not in ("draft", "sent"):
            raise BusinessError(
                _(
                    "Opportunity %(id)s changed but its order %(order)s is "
                    "%(state)s in Odoo.",
                    id=engagement.external_id,
                    order=order.name,
                    state=order.state,
                ),
                category="change_order",
                records=[("sale.order", order.id)],
            )
        if order:
            order.write(values)
            self._salesforce_sync_draft_lines(order, engagement, resolved)
            operation = "updated"
        else:
            order = self.env["sale.order"].create(values)
            self._salesforce_create_lines(order, engagement.lines, resolved)
            operation = "created"
        self._salesforce_bind(
            const.BINDING_OPPORTUNITY, engagement.external_id, order, updated_at, digest
        )
        self.env["qtc.trace"]._qtc_record(order, operation, backend=self)
        if self.salesforce_confirm_orders and order.state in ("draft", "sent"):
            order.action_confirm()
            self.env["qtc.trace"]._qtc_record(
                order, "updated", note=_("confirmed"), backend=self
            )
            for created in (order.project_ids, order.tasks_ids):
                if created:
                    self.env["qtc.trace"]._qtc_record(
                        created,
                        "created",
                        note=_("by order confirmation"),
                        backend=self,
                    )
        return f"Opportunity {engagement.external_id} -> {order.name}: {operation}"

    def _salesforce_map_engagement(self, record, config, schedules=()):
        try:
            return mapper.map_engagement(record, config, schedules)
        except mapper.MappingError as exc:
            raise BusinessError(
                _("Opportunity %s cannot be read.", record.get("Id")),
                category="data",
                problems=list(exc.problems),
                external_ref=(const.BINDING_OPPORTUNITY, record.get("Id")),
            ) from None

    def _salesforce_with_schedules(self, record, engagement, config):
        """Read the schedules of milestone lines, when enabled (one call)."""
        if not self.salesforce_read_schedules:
            return engagement
        line_ids = [
            line.external_id
            for line in engagement.lines
            if line.billing_kind == "milestone" and line.external_id
        ]
        if not line_ids:
            return engagement
        schedules = []
        for start in range(0, len(line_ids), soql.MAX_IDS_PER_QUERY):
            chunk = line_ids[start : start + soql.MAX_IDS_PER_QUERY]
            schedules.extend(self._salesforce_query(soql.schedule_query(chunk)))
        if not schedules:
            return engagement
        return self._salesforce_map_engagement(record, config, schedules)

    def _salesforce_products(self, codes):
        """The products of Salesforce product codes: value map first, then
        ``default_code``; the same two lookups whatever the number of codes.

        :returns: ``{code: product or None}`` (``None``: neither knows it)
        """
        codes = [code for code in dict.fromkeys(codes) if code]
        if not codes:
            return {}
        value_map = self.env["qtc.value.map"]._qtc_find(const.MAP_PRODUCT, self)
        map_lines = {}
        for line in value_map.line_ids:
            # The first line of a value wins, as in ``qtc.value.map._qtc_map``.
            map_lines.setdefault(line.external_value, line)
        products = {}
        for code in codes:
            line = map_lines.get(str(code))
            products[code] = (line._qtc_value() if line else None) or None
        unmapped = [code for code, product in products.items() if not product]
        if unmapped:
            # In the model's order, the first product of a code wins (as a
            # search with limit=1 per code would pick it).
            for product in self.env["product.product"].search(
                [
                    ("default_code", "in", unmapped),
                    ("sale_ok", "=", True),
                    "|",
                    ("company_id", "=", False),
                    ("company_id", "=", self.company_id.id),
                ]
            ):
                if not products[product.default_code]:
                    products[product.default_code] = product
        return products

    def _salesforce_validate(self, engagement, record, config, order):
        """Every reason the engagement cannot become an order, raised at once.

        :returns: ``{"products": {code: product}, "pricelist": ...,
            "payment_term": ..., "currency": ...}`` when there is none
        :raises BusinessError: category ``mapping`` when every problem is an
            unmapped value, else ``data``
        """
        products = self._salesforce_products(
            line.product_code for line in engagement.lines
        )
        active_currencies = self.env["res.currency"].search([]).mapped("name")
        problems = mapper.validate_engagement(
            engagement,
            active_currencies,
            {code for code, product in products.items() if product},
            self.salesforce_require_tax_id,
            config,
        )
        mapping_problems = {p for p in problems if "is not mapped to a product" in p}
        account = engagement.account
        if (
            account
            and account.billing_country_code
            and len(account.billing_country_code) == 2
            and not self._salesforce_country(account.billing_country_code)
        ):
            problems.append(
                f"Account.BillingCountryCode: {account.billing_country_code} is not a "
                "country known to Odoo"
            )
        for position, line in enumerate(engagement.lines):
            product = products.get(line.product_code)
            if (
                product
                and line.billing_kind == "milestone"
                and product.service_policy != "delivered_milestones"
            ):
                problems.append(
                    f"OpportunityLineItems[{position}] ({line.external_id}): billed "
                    f"by milestone but product {product.display_name} is not "
                    "invoiced on milestones"
                )
        currency = self.env["res.currency"].search(
            [("name", "=", engagement.currency_code or "")], limit=1
        )
        pricelist = self._salesforce_pricelist(
            record.get("Pricebook2Id"), currency, problems
        )
        mapping_problems |= {p for p in problems if p.startswith("Pricebook2Id")}
        term = None
        term_field = self.salesforce_payment_term_field
        term_code = record.get(term_field) if term_field else None
        if term_field and term_code:
            term = self.env["qtc.value.map"]._qtc_map(
                const.MAP_PAYMENT_TERM, term_code, backend=self, required=False
            )
            if not term:
                message = (
                    f"{term_field}: {term_code!r} is not mapped in "
                    f"{const.MAP_PAYMENT_TERM}"
                )
                problems.append(message)
                mapping_problems.add(message)
        if problems:
            all_mapping = all(p in mapping_problems for p in problems)
            raise BusinessError(
                _(
                    "Opportunity %(name)s (%(id)s) cannot become a sale order: "
                    "%(count)s problem(s).",
                    name=engagement.name or "?",
                    id=engagement.external_id,
                    count=len(problems),
                ),
                category="mapping" if all_mapping else "data",
                problems=problems,
                suggested_action=_(
                    "Complete the value maps (%(maps)s) or correct the opportunity "
                    "in Salesforce, then retry.",
                    maps=", ".join(
                        (const.MAP_PRODUCT, const.MAP_PRICELIST, const.MAP_PAYMENT_TERM)
                    ),
                ),
                records=[("sale.order", order.id)] if order else [],
                external_ref=(const.BINDING_OPPORTUNITY, engagement.external_id),
            )
        return {
            "products": products,
            "pricelist": pricelist,
            "payment_term": term,
            "currency": currency,
        }

    def _salesforce_pricelist(self, pricebook, currency, problems):
        """Pricelist by value map on the opportunity's price book, else one
        in the opportunity's currency (the order's currency follows it)."""
        pricelist = None
        if pricebook:
            pricelist = self.env["qtc.value.map"]._qtc_map(
                const.MAP_PRICELIST, pricebook, backend=self, required=False
            )
        if not pricelist and currency:
            pricelist = self.env["product.pricelist"].search(
                [
                    ("currency_id", "=", currency.id),
                    "|",
                    ("company_id", "=", False),
                    ("company_id", "=", self.company_id.id),
                ],
                limit=1,
            )
        if currency and pricelist and pricelist.currency_id != currency:
            problems.append(
                f"Pricebook2Id: {pricebook} maps to pricelist {pricelist.name} in "
                f"{pricelist.currency_id.name}, not {currency.name}"
            )
        elif currency and not pricelist and currency != self.company_id.currency_id:
            problems.append(
                f"Pricebook2Id: no pricelist in {currency.name}; map one in "
                f"{const.MAP_PRICELIST}"
            )
        return pricelist or None

    def _salesforce_opportunity_partner(self, engagement, record):
        """The customer: the account read with the opportunity is applied like
        an Account record (stale or identical versions change nothing)."""
        account_record = record.get("Account")
        if isinstance(account_record, dict) and account_record.get("Id"):
            return self._salesforce_upsert_account(account_record)[0]
        return self._salesforce_account_partner(engagement.account_external_id)

    def _salesforce_order_values(self, engagement, partner, resolved):
        values = {
            "partner_id": partner.id,
            "company_id": self.company_id.id,
            "client_order_ref": engagement.name,
            "origin": f"Salesforce {engagement.external_id}",
        }
        if resolved["pricelist"]:
            values["pricelist_id"] = resolved["pricelist"].id
        if resolved["payment_term"]:
            values["payment_term_id"] = resolved["payment_term"].id
        if engagement.description:
            values["note"] = engagement.description
        return values

    def _salesforce_line_values(self, line, product):
        values = {
            "product_id": product.id,
            "product_uom_qty": float(line.quantity),
            "price_unit": float(line.unit_price),
            "discount": float(line.discount_percent or 0),
            "salesforce_schedule": [
                {
                    "id": entry.external_id,
                    "date": entry.date.isoformat() if entry.date else None,
                    "quantity": float(entry.quantity)
                    if entry.quantity is not None
                    else None,
                    "revenue": float(entry.revenue)
                    if entry.revenue is not None
                    else None,
                }
                for entry in line.schedules
            ]
            or False,
        }
        if line.description:
            values["name"] = f"{product.display_name}\n{line.description}"
        return values

    def _salesforce_create_lines(self, order, lines, resolved):
        if not lines:
            return self.env["sale.order.line"]
        created = self.env["sale.order.line"].create(
            [
                {
                    **self._salesforce_line_values(
                        line, resolved["products"][line.product_code]
                    ),
                    "order_id": order.id,
                }
                for line in lines
            ]
        )
        self._salesforce_bind_lines(lines, created)
        self.env["qtc.trace"]._qtc_record(created, "created", backend=self)
        return created

    def _salesforce_bind_lines(self, lines, sale_lines):
        """Bind each line item to its sale line, as ``qtc.binding._qtc_bind``
        does one at a time, with one search and one create for all of them.

        Bindings are the system's bookkeeping, written as ``_qtc_bind`` writes
        them (sudo, the binding's own target checks still run); the sale lines
        were just created by this job.
        """
        sale_lines.check_access("read")
        Binding = self.env["qtc.binding"].sudo()
        existing = {}
        for binding in Binding.search(
            [
                ("backend_id", "=", self.id),
                ("external_type", "=", const.BINDING_LINE),
                ("external_id", "in", [str(line.external_id) for line in lines]),
            ]
        ):
            existing.setdefault(binding.external_id, binding)
        correlation_id = self.env.context.get("qtc_correlation_id")
        new_values = []
        for line, sale_line in zip(lines, sale_lines, strict=True):
            values = {
                "res_model": sale_line._name,
                "res_id": sale_line.id,
                "correlation_id": correlation_id,
            }
            binding = existing.get(str(line.external_id))
            if binding:
                binding.write(values)
            else:
                new_values.append(
                    {
                        **values,
                        "backend_id": self.id,
                        "external_type": const.BINDING_LINE,
                        "external_id": str(line.external_id),
                    }
                )
        Binding.create(new_values)

    def _salesforce_bound_lines(self, order):
        """``{line item id: sale.order.line}`` of the order's bound lines."""
        bindings = self.env["qtc.binding"].search(
            [
                ("backend_id", "=", self.id),
                ("external_type", "=", const.BINDING_LINE),
                ("res_model", "=", "sale.order.line"),
                ("res_id", "in", order.order_line.ids),
            ]
        )
        lines = self.env["sale.order.line"].browse(bindings.mapped("res_id"))
        by_id = {line.id: line for line in lines}
        return {b.external_id: by_id[b.res_id] for b in bindings if b.res_id in by_id}

    def _salesforce_sync_draft_lines(self, order, engagement, resolved):
        bound = self._salesforce_bound_lines(order)
        seen = set()
        new_lines = []
        for line in engagement.lines:
            sale_line = bound.get(line.external_id)
            if sale_line:
                seen.add(line.external_id)
                sale_line.write(
                    self._salesforce_line_values(
                        line, resolved["products"][line.product_code]
                    )
                )
            else:
                new_lines.append(line)
        self._salesforce_create_lines(order, new_lines, resolved)
        for external_id, sale_line in bound.items():
            if external_id not in seen:
                self.env["qtc.trace"]._qtc_record(
                    sale_line, "reversed", note=_("line removed"), backend=self
                )
                self.env["qtc.binding"]._qtc_unbind(
                    self, const.BINDING_LINE, external_id
                )
                sale_line.unlink()

    def _salesforce_line_diff(self, order, engagement, resolved):
        """Differences between a confirmed order and the opportunity's lines.

        :returns: ``(added, removed, changed)``: engagement lines not on the
            order, ``(line item id, sale line)`` no longer sold, and
            ``(sale line, [text of each change])``
        """
        bound = self._salesforce_bound_lines(order)
        added, changed = [], []
        for line in engagement.lines:
            sale_line = bound.get(line.external_id)
            if not sale_line:
                added.append(line)
                continue
            product = resolved["products"][line.product_code]
            notes = []
            if sale_line.product_id != product:
                notes.append(
                    f"product {sale_line.product_id.display_name} -> "
                    f"{product.display_name}"
                )
            precision = sale_line.product_uom.rounding or 0.01
            if float_compare(
                sale_line.product_uom_qty,
                float(line.quantity),
                precision_rounding=precision,
            ):
                old_qty, new_qty = sale_line.product_uom_qty, float(line.quantity)
                notes.append(f"quantity {old_qty:g} -> {new_qty:g}")
            if order.currency_id.compare_amounts(
                sale_line.price_unit, float(line.unit_price)
            ):
                notes.append(
                    f"unit price {sale_line.price_unit:.2f} -> "
                    f"{float(line.unit_price):.2f}"
                )
            if float_compare(
                sale_line.discount,
                float(line.discount_percent or 0),
                precision_digits=2,
            ):
                notes.append(
                    f"discount {sale_line.discount:g}% -> "
                    f"{float(line.discount_percent or 0):g}%"
                )
            if notes:
                changed.append((sale_line, notes))
        wanted = {line.external_id for line in engagement.lines}
        removed = [
            (external_id, sale_line)
            for external_id, sale_line in bound.items()
            if external_id not in wanted
        ]
        return added, removed, changed

    @staticmethod
    def _salesforce_diff_text(added, removed, changed):
        lines = [
            f"added: {line.product_code} x {float(line.quantity):g} at "
            f"{float(line.unit_price):.2f} ({line.external_id})"
            for line in added
        ]
        lines.extend(
            f"removed: {sale_line.product_id.display_name} x "
            f"{sale_line.product_uom_qty:g} ({external_id})"
            for external_id, sale_line in removed
        )
        lines.extend(
            f"changed: {sale_line.product_id.display_name}: {', '.join(notes)}"
            for sale_line, notes in changed
        )
        return lines

    def _salesforce_change_order(
        self, order, engagement, resolved, digest, updated_at, apply_added
    ):
        added, removed, changed = self._salesforce_line_diff(
            order, engagement, resolved
        )
        differences = self._salesforce_diff_text(added, removed, changed)
        if not differences:
            self._salesforce_bind(
                const.BINDING_OPPORTUNITY,
                engagement.external_id,
                order,
                updated_at,
                digest,
            )
            self.env["qtc.trace"]._qtc_record(
                order, "skipped", note=_("no change to the order lines"), backend=self
            )
            return f"Opportunity {engagement.external_id}: order lines unchanged"
        if not apply_added:
            raise BusinessError(
                _(
                    "Opportunity %(id)s changed after order %(order)s was confirmed: "
                    "%(count)s difference(s).",
                    id=engagement.external_id,
                    order=order.name,
                    count=len(differences),
                ),
                category="change_order",
                problems=differences,
                suggested_action=_(
                    "Review the differences. 'Apply added lines' adds the new scope "
                    "to the order; reductions and changes need a manual amendment "
                    "(or a credit note) and are never applied silently."
                ),
                records=[("sale.order", order.id)],
            )
        if not added:
            raise UserError(_("This change adds no line; nothing to apply."))
        self._salesforce_create_lines(order, added, resolved)
        remaining = self._salesforce_diff_text([], removed, changed)
        order.message_post(
            body=_(
                "Salesforce change applied: %(count)s line(s) added.%(rest)s",
                count=len(added),
                rest=(_(" Not applied: %s", "; ".join(remaining)) if remaining else ""),
            )
        )
        self._salesforce_bind(
            const.BINDING_OPPORTUNITY, engagement.external_id, order, updated_at, digest
        )
        self.env["qtc.trace"]._qtc_record(
            order, "updated", note=_("added lines applied"), backend=self
        )
        return f"Opportunity {engagement.external_id}: {len(added)} line(s) added"

    # ============================================================ write-back

    @job_function
    def _salesforce_writeback_flush(self):
        """Job: write order and invoice status of every pending opportunity.

        One sObject Collections PATCH per 200 records. Values equal to what was
        last written are not sent again. Records Salesforce could not update
        for a transient reason are retried by a later job; others open an
        exception.

        :raises RetryableError: the call itself failed (5xx, timeout, limit)
        """
        self.ensure_one()
        # The write-back marks on bindings are the system's bookkeeping (only
        # QTC Managers edit bindings); the orders are read as the job's user.
        bindings = (
            self.env["qtc.binding"]
            .sudo()
            .search(
                [
                    ("backend_id", "=", self.id),
                    ("external_type", "=", const.BINDING_OPPORTUNITY),
                    ("res_model", "=", "sale.order"),
                    ("salesforce_writeback_pending", "=", True),
                ]
            )
        )
        updates, pending = self._salesforce_writeback_updates(bindings)
        requests = writeback_lib.build_update_requests(updates)
        written, retry, failed = 0, 0, []
        for collection in requests:
            response = self._salesforce_call(
                "PATCH", writeback_lib.COLLECTIONS_PATH, json=collection.body
            )
            try:
                result = writeback_lib.parse_update_results(collection, response.json())
            except (ValueError, writeback_lib.WritebackError) as exc:
                raise BusinessError(
                    _("Salesforce answered the write-back unexpectedly."),
                    category="remote_rejected",
                    problems=[str(exc)],
                ) from None
            for record_id in result.successes:
                binding, digest = pending[record_id]
                binding.write(
                    {
                        "salesforce_written_hash": digest,
                        "salesforce_writeback_pending": False,
                    }
                )
                written += 1
            errors_by_id = {}
            for error in result.errors:
                errors_by_id.setdefault(error.record_id, []).append(error)
            for record_id, errors in errors_by_id.items():
                binding, _digest = pending[record_id]
                if all(error.retryable for error in errors):
                    retry += 1
                    continue
                binding.salesforce_writeback_pending = False
                failed.append(
                    f"{record_id}: "
                    + "; ".join(f"{e.error_code}: {e.message}" for e in errors)
                )
        if failed:
            self._salesforce_open_writeback_exception(failed)
        if retry:
            # Boundary (queue): see _salesforce_enqueue_writeback.
            self.env["qtc.job"].sudo()._qtc_enqueue(
                self,
                "_salesforce_writeback_flush",
                name=_("Salesforce write-back (retry)"),
                backend=self,
                priority=const.WRITEBACK_PRIORITY,
                eta=fields.Datetime.now()
                + timedelta(seconds=const.WRITEBACK_RETRY_SECONDS),
                identity_key=f"salesforce:writeback:{self.id}",
                resources=[f"salesforce.writeback:{self.id}"],
                user=self._qtc_technical_user(),
            )
        return (
            f"{written} record(s) written, {retry} to retry, {len(failed)} refused, "
            f"{len(requests)} call(s)"
        )

    def _salesforce_writeback_updates(self, bindings):
        """The ``RecordUpdate`` list and ``{record id: (binding, hash)}``.

        Bindings whose values were already written are cleared here. Orders,
        account bindings and open balances are read for all bindings at once:
        a flush covers a whole sweep's orders (thousands), and a query per
        record would make it the longest job of the sync.
        """
        updates, pending = [], {}
        orders = self.env["sale.order"].browse(set(bindings.mapped("res_id"))).exists()
        orders_by_id = {order.id: order for order in orders}
        partners = {}
        for binding in bindings:
            order = orders_by_id.get(binding.res_id)
            if not order:
                binding.salesforce_writeback_pending = False
                continue
            values = order._salesforce_writeback_values(self)
            digest = mapper.payload_hash(values)
            if values and digest != binding.salesforce_written_hash:
                updates.append(
                    writeback_lib.RecordUpdate(
                        "Opportunity", binding.external_id, values
                    )
                )
                pending[binding.external_id] = (binding, digest)
            else:
                binding.salesforce_writeback_pending = False
            partner = order.partner_id.commercial_partner_id
            partners[partner.id] = partner
        balance_field = self.salesforce_account_balance_field
        if not balance_field or not partners:
            return updates, pending
        account_bindings = {}
        for account_binding in self.env["qtc.binding"].search(
            [
                ("backend_id", "=", self.id),
                ("external_type", "=", const.BINDING_ACCOUNT),
                ("res_model", "=", "res.partner"),
                ("res_id", "in", list(partners)),
            ]
        ):
            # The first in the model's order, as a search with limit=1 gives.
            account_bindings.setdefault(account_binding.res_id, account_binding)
        balances = (
            self.env["res.partner"]
            .browse(list(partners))
            ._salesforce_open_balances(self.company_id)
        )
        for partner_id in partners:
            account_binding = account_bindings.get(partner_id)
            if not account_binding or account_binding.external_id in pending:
                continue
            values = {balance_field: balances[partner_id]}
            digest = mapper.payload_hash(values)
            if digest == account_binding.salesforce_written_hash:
                continue
            updates.append(
                writeback_lib.RecordUpdate(
                    "Account", account_binding.external_id, values
                )
            )
            pending[account_binding.external_id] = (account_binding, digest)
        return updates, pending

    def _salesforce_open_writeback_exception(self, failures):
        """One exception for the refused records; the job goes on (the records
        Salesforce accepted stay written)."""
        self.env["qtc.exception"]._qtc_open(
            BusinessError(
                _("Salesforce refused %s write-back update(s)", len(failures)),
                category="remote_rejected",
                problems=failures,
                suggested_action=_(
                    "Check the write-back field names and the integration user's "
                    "field permissions, then change the order to write again."
                ),
            ),
            backend=self,
        )

    def _salesforce_enqueue_writeback(self):
        """Queue (once) the write-back job of this backend. It runs once no
        event job is ready (``const.WRITEBACK_PRIORITY``)."""
        self.ensure_one()
        # Boundary (queue): whoever confirms, invoices or reconciles (a
        # salesperson, an accountant) may not read the queue; the job it
        # queues runs as the technical user.
        return (
            self.env["qtc.job"]
            .sudo()
            ._qtc_enqueue(
                self,
                "_salesforce_writeback_flush",
                name=_("Salesforce write-back"),
                backend=self,
                priority=const.WRITEBACK_PRIORITY,
                identity_key=f"salesforce:writeback:{self.id}",
                resources=[f"salesforce.writeback:{self.id}"],
                # A follow-up of whoever confirmed, invoiced or reconciled:
                # the system's work, run by the technical user.
                user=self._qtc_technical_user(),
            )
        )


def _now():
    return fields.Datetime.now()
