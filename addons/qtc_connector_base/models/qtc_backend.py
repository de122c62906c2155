import functools
import ipaddress
import json
import logging
import threading
import uuid
from collections import namedtuple
from datetime import timedelta

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.http import request

from .. import const
from ..access import GROUP_MANAGER, GROUP_USER, check_action
from ..exceptions import person_message
from ..lib import resources as resources_lib
from ..lib import signature
from ..lib.destinations import (
    DestinationPolicy,
    OutboundRefused,
    parse_host_entries,
    parse_networks,
)
from ..lib.errors import BusinessError, ConfigError, QtcError
from ..lib.http import HttpClient
from ..lib.ratelimit import TokenBucket
from ..lib.secretbox import UndecryptableSecret
from .qtc_credential import secret_box, server_option

_logger = logging.getLogger(__name__)

MANAGER_GROUP = GROUP_MANAGER
SERVICE_GROUP = "qtc_connector_base.group_qtc_service"

# What the webhook controller needs about a backend, cached per process so that
# accepting an event costs no query for configuration (see _qtc_webhook_config).
WebhookConfig = namedtuple(
    "WebhookConfig",
    "backend_id provider state company_id max_body_bytes tolerance secrets "
    "previous_until channel_id max_attempts active sender_networks webhook_path "
    "technical_user_id",
)
# Sender networks that match no sender (an unreadable allow-list refuses all).
NO_SENDER = (ipaddress.ip_network("255.255.255.255/32"),)
# One parsed inbound event, as a provider's _qtc_webhook_parse returns them.
InboundEvent = namedtuple("InboundEvent", "external_id event_type payload", defaults=())


def request_json(payload, status=200):
    return request.make_json_response(payload, status=status)


# Errors that stop one event of a batch without failing the others.
BUSINESS_ERRORS = (BusinessError, ConfigError, UserError, ValidationError, AccessError)

_http_clients = {}
_http_clients_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def server_destinations(hosts_text, networks_text):
    """The server configuration's extra destinations, parsed once per value.

    :returns: ``(host entries, networks)``
    :raises OutboundRefused: an entry that cannot be read (named, with the
        option; nothing is allowed until it is fixed)
    """
    try:
        networks = parse_networks(networks_text)
    except ValueError as exc:
        raise OutboundRefused(
            f"The server option {exc}: the server administrator must correct it."
        ) from None
    return parse_host_entries(hosts_text), networks


class QtcBackend(models.Model):
    """A connection to one external system.

    Providers plug in as Odoo's payment providers do: each connector adds its
    value to ``provider`` with ``selection_add`` and overrides the ``_qtc_*``
    hooks, each override opening with ``if self.provider != "x": return super()``.
    The base never tests for a particular provider.

    Secrets are declared as ``fields.Char(qtc_secret="<key>", ...)``: write-only
    fields whose value is encrypted into ``qtc.credential`` and never read back.
    """

    _name = "qtc.backend"
    _description = "QTC Connector Backend"
    _inherit = ["mail.thread"]
    _order = "sequence, name, id"

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    provider = fields.Selection(
        [("none", "No provider")],
        default="none",
        required=True,
        tracking=True,
        help="The external system this backend talks to.",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    environment = fields.Selection(
        [("sandbox", "Sandbox"), ("production", "Production")],
        default="sandbox",
        required=True,
        tracking=True,
    )
    state = fields.Selection(
        [("draft", "Draft"), ("active", "Active"), ("disabled", "Disabled")],
        default="draft",
        required=True,
        tracking=True,
        help="Only active backends accept webhooks and run scheduled syncs.",
    )
    webhook_secret = fields.Char(
        string="Webhook signing secret",
        compute="_compute_qtc_secrets",
        inverse="_inverse_qtc_secrets",
        groups=MANAGER_GROUP,
        qtc_secret="webhook_secret",  # noqa: S106 - the credential name
        help="Write-only. Entering a new secret keeps the previous one valid for "
        "the rotation window, so no event is dropped while senders switch.",
    )
    secret_rotation_hours = fields.Integer(
        default=const.DEFAULT_SECRET_ROTATION_HOURS,
        groups=MANAGER_GROUP,
        help="How long the previous webhook secret stays valid after a new one is set.",
    )
    credentials_changed_at = fields.Datetime(
        readonly=True, groups=MANAGER_GROUP, help="Last change of any credential."
    )
    webhook_secret_previous_until = fields.Datetime(
        readonly=True,
        groups=MANAGER_GROUP,
        help="Until then, events signed with the previous secret are accepted too.",
    )
    secrets_summary = fields.Char(
        compute="_compute_secrets_summary", groups=MANAGER_GROUP
    )
    webhook_tolerance = fields.Integer(
        string="Signature tolerance (s)", default=const.WEBHOOK_TOLERANCE_SECONDS
    )
    max_body_bytes = fields.Integer(
        string="Max webhook body (bytes)", default=const.DEFAULT_MAX_BODY_BYTES
    )
    sender_networks = fields.Text(
        string="Accepted sender networks",
        help="Optional. IP networks (CIDR, one per line or comma-separated) "
        "webhooks of this backend may come from; requests from anywhere else "
        "are refused before their body is read. Empty: any sender with a "
        "valid signature. Behind a reverse proxy, Odoo sees the proxy's "
        "address unless proxy_mode is on and the proxy sets X-Forwarded-For "
        "and X-Forwarded-Host. Providers publish their senders' ranges "
        "(see the Security section of the base's readme).",
    )
    webhook_url = fields.Char(compute="_compute_webhook_url")
    timeout_seconds = fields.Float(string="HTTP timeout (s)", default=30.0)
    rate_limit_per_second = fields.Float(
        help="Outbound calls per second from each Odoo process; 0 means no limit."
    )
    event_retention_days = fields.Integer(
        default=30,
        help="Done and ignored events older than this are pruned; at least "
        f"{const.MIN_EVENT_RETENTION_DAYS} days so late redeliveries are still "
        "recognised as duplicates.",
    )
    job_max_attempts = fields.Integer(default=const.DEFAULT_MAX_ATTEMPTS)
    responsible_user_id = fields.Many2one(
        "res.users",
        string="Exception responsible",
        help="Gets an activity for each exception this backend's work raises.",
    )
    job_channel_id = fields.Many2one(
        "qtc.job.channel", help="Channel of this backend's jobs (capacity limit)."
    )
    technical_user_id = fields.Many2one(
        "res.users",
        string="Technical user",
        compute="_compute_technical_user_id",
        store=True,
        readonly=False,
        precompute=True,
        ondelete="restrict",
        tracking=True,
        domain="[('share', '=', False), ('company_ids', 'in', company_id)]",
        help="Runs the work that comes from the sender or the system: webhooks, "
        "scheduled syncs and their follow-ups, with this user's rights only. "
        "Default: the company's QTC service user, a member of QTC service "
        "account with exactly the rights the installed connectors need.",
    )

    # Health, computed on demand for the dashboard.
    job_pending_count = fields.Integer(compute="_compute_health")
    job_started_count = fields.Integer(compute="_compute_health")
    job_failed_count = fields.Integer(compute="_compute_health")
    job_dead_count = fields.Integer(compute="_compute_health")
    event_failed_count = fields.Integer(compute="_compute_health")
    exception_open_count = fields.Integer(compute="_compute_health")
    failures_24h = fields.Integer(compute="_compute_health", string="Failures (24 h)")
    oldest_pending_minutes = fields.Float(compute="_compute_health")
    last_success_at = fields.Datetime(compute="_compute_health")
    last_event_at = fields.Datetime(
        compute="_compute_health", string="Last event received"
    )
    health_status = fields.Selection(
        [("ok", "Healthy"), ("warning", "Warning"), ("error", "Failing")],
        compute="_compute_health",
    )

    _sql_constraints = [
        (
            "retention_min",
            f"CHECK(event_retention_days >= {const.MIN_EVENT_RETENTION_DAYS})",
            f"Events must be kept at least {const.MIN_EVENT_RETENTION_DAYS} days so "
            "late redeliveries are still recognised as duplicates.",
        ),
        (
            "max_body_positive",
            "CHECK(max_body_bytes > 0)",
            "The body cap must be positive.",
        ),
    ]

    # ------------------------------------------------------------------ fields

    @api.model
    def _valid_field_parameter(self, field, name):
        return name == "qtc_secret" or super()._valid_field_parameter(field, name)

    def _qtc_secret_fields(self):
        """``{field name: credential key}`` of every write-only secret field."""
        return {
            name: field.qtc_secret
            for name, field in self._fields.items()
            if getattr(field, "qtc_secret", None)
        }

    def _compute_qtc_secrets(self):
        # Write-only: the form always shows an empty field.
        for fname in self._qtc_secret_fields():
            self[fname] = False

    def _inverse_qtc_secrets(self):
        for backend in self:
            for fname, key in backend._qtc_secret_fields().items():
                value = backend[fname]
                if value:
                    backend._qtc_set_secret(key, value)

    def _compute_secrets_summary(self):
        secret_fields = self._qtc_secret_fields()
        stored = (
            self.env["qtc.credential"].sudo().search([("backend_id", "in", self.ids)])
        )
        for backend in self:
            keys = set(
                stored.filtered(lambda c, b=backend: c.backend_id == b).mapped("key")
            )
            # Only this provider's secrets (fields carry the provider prefix) and
            # the shared webhook secret.
            parts = [
                f"{self._fields[fname].string}: {'set' if key in keys else 'not set'}"
                for fname, key in secret_fields.items()
                if fname == "webhook_secret" or fname.startswith(f"{backend.provider}_")
            ]
            until = backend.sudo().webhook_secret_previous_until
            if (
                "webhook_secret_previous" in keys
                and until
                and until > fields.Datetime.now()
            ):
                parts.append(f"previous webhook secret valid until {until} UTC")
            backend.secrets_summary = " · ".join(parts)

    @api.depends("company_id")
    def _compute_technical_user_id(self):
        for backend in self:
            user = backend.technical_user_id
            # Boundary (read): a user's companies and a company's service user,
            # to pick the default; nothing is written but this field.
            if not user or backend.company_id not in user.sudo().company_ids:
                backend.technical_user_id = (
                    backend.company_id.sudo().qtc_service_user_id
                )

    @api.constrains("technical_user_id", "company_id")
    def _check_technical_user_id(self):
        for backend in self:
            # Boundary (read): the chosen user's groups and companies.
            user = backend.technical_user_id.sudo()
            if not user:
                continue
            if (
                user._is_superuser()
                or user.share
                or not user._has_group(SERVICE_GROUP)
                or backend.company_id not in user.company_ids
            ):
                raise ValidationError(
                    _(
                        "The technical user of %(backend)s must be a member of QTC "
                        "service account allowed in company %(company)s (not the "
                        "superuser, not a portal user).",
                        backend=backend.name,
                        company=backend.company_id.name,
                    )
                )

    @api.depends("provider")
    def _compute_webhook_url(self):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url", "")
        for backend in self:
            path = backend._qtc_webhook_path() if backend.id else False
            backend.webhook_url = f"{base_url}{path}" if path else False

    def _compute_health(self):
        stats = self.env["qtc.job"]._qtc_backend_stats(self.ids)
        for backend in self:
            values = stats.get(backend.id, {})
            for fname in (
                "job_pending_count",
                "job_started_count",
                "job_failed_count",
                "job_dead_count",
                "event_failed_count",
                "exception_open_count",
                "failures_24h",
                "oldest_pending_minutes",
                "last_success_at",
                "last_event_at",
            ):
                backend[fname] = values.get(fname) or False
            backend.health_status = self._qtc_health_status(values)

    @api.model
    def _qtc_health_status(self, values):
        if values.get("job_dead_count") or values.get("failures_24h", 0) >= 10:
            return "error"
        if (
            values.get("job_failed_count")
            or values.get("exception_open_count")
            or (values.get("oldest_pending_minutes") or 0) > 15
        ):
            return "warning"
        return "ok"

    # ------------------------------------------------------------------- CRUD

    def _qtc_cached_fields(self):
        """Fields the per-process caches (webhook configuration, HTTP client)
        depend on; writing others (sync watermarks, counters) keeps the caches."""
        return {
            "active",
            "state",
            "provider",
            "company_id",
            "max_body_bytes",
            "webhook_tolerance",
            "webhook_secret_previous_until",
            "secret_rotation_hours",
            "job_channel_id",
            "job_max_attempts",
            "technical_user_id",
            "rate_limit_per_second",
            "timeout_seconds",
            "environment",
            "sender_networks",
            *self._qtc_secret_fields(),
        }

    @api.constrains("sender_networks")
    def _check_sender_networks(self):
        for backend in self:
            try:
                parse_networks(backend.sender_networks, option=_("Sender networks"))
            except ValueError as exc:
                raise ValidationError(str(exc)) from None

    @api.model_create_multi
    def create(self, vals_list):
        backends = super().create(vals_list)
        # An id probed before it existed is cached as unknown: forget it.
        self.env.registry.clear_cache()
        return backends

    def write(self, vals):
        result = super().write(vals)
        if "company_id" in vals:
            # Record rules are checked before a write only: a backend moved
            # to a company the user does not work in is refused after it.
            self.check_access("write")
        if self._qtc_cached_fields() & set(vals):
            self.env.registry.clear_cache()
        return result

    def unlink(self):
        self.env.registry.clear_cache()
        return super().unlink()

    # ---------------------------------------------------------------- actions

    def action_activate(self):
        check_action(self, GROUP_MANAGER, "write", _("activate a backend"))
        self.write({"state": "active"})

    def action_disable(self):
        check_action(self, GROUP_MANAGER, "write", _("disable a backend"))
        self.write({"state": "disabled"})

    def action_reset_draft(self):
        check_action(self, GROUP_MANAGER, "write", _("reset a backend to draft"))
        self.write({"state": "draft"})

    def action_test_connection(self):
        """Call the provider's connection test; report the outcome to the user
        and in the chatter. Never shows a secret.

        QTC Managers only: the test sends the backend's credentials out.
        """
        self.ensure_one()
        check_action(self, GROUP_MANAGER, "write", _("test a backend's connection"))
        try:
            message = self._qtc_test_connection()
            kind = "success"
        except (QtcError, UserError) as exc:
            message = person_message(exc)
            kind = "danger"
        self.message_post(body=_("Connection test: %(message)s", message=message))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Connection test"),
                "message": message,
                "type": kind,
                "sticky": kind == "danger",
            },
        }

    def action_end_secret_rotation(self):
        """Stop accepting the previous webhook secret now (QTC Managers)."""
        check_action(self, GROUP_MANAGER, "write", _("revoke a webhook secret"))
        for backend in self:
            # The credential table is readable by no one through the UI; the
            # manager's rights on the backend were checked above.
            backend.sudo().env["qtc.credential"].search(
                [
                    ("backend_id", "=", backend.id),
                    ("key", "=", "webhook_secret_previous"),
                ]
            ).unlink()
            backend.sudo().webhook_secret_previous_until = False
            backend.message_post(body=_("Previous webhook secret revoked."))
        self.env.registry.clear_cache()

    def _qtc_open_related(self, model, name, extra_domain=None):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": model,
            "view_mode": "list,form",
            "domain": [("backend_id", "=", self.id), *(extra_domain or [])],
            "context": {"default_backend_id": self.id},
        }

    def action_view_jobs(self):
        check_action(self, GROUP_USER, "read", _("open a backend's jobs"))
        return self._qtc_open_related("qtc.job", _("Jobs"))

    def action_view_events(self):
        check_action(self, GROUP_USER, "read", _("open a backend's events"))
        return self._qtc_open_related("qtc.event", _("Events"))

    def action_view_exceptions(self):
        check_action(self, GROUP_USER, "read", _("open a backend's exceptions"))
        return self._qtc_open_related(
            "qtc.exception", _("Exceptions"), [("state", "=", "open")]
        )

    # ------------------------------------------------------- credential store

    def _qtc_set_secret(self, key, value):
        """Encrypt and store ``value`` as the backend's secret ``key``.

        Setting a new ``webhook_secret`` keeps the old one as
        ``webhook_secret_previous`` for ``secret_rotation_hours`` (re-encrypted
        for that name: ciphertexts are bound to their backend and name). A
        current secret that cannot be opened any more is dropped instead.

        :raises KeyConfigError: no encryption key configured (nothing is stored)
        """
        self.ensure_one()
        box = secret_box()
        credentials = self.env["qtc.credential"].sudo()
        existing = credentials.search([("backend_id", "=", self.id), ("key", "=", key)])
        if key == "webhook_secret" and existing:
            previous = credentials.search(
                [("backend_id", "=", self.id), ("key", "=", "webhook_secret_previous")]
            )
            previous.unlink()
            try:
                kept = box.rebind(
                    existing.ciphertext,
                    self.id,
                    "webhook_secret",
                    "webhook_secret_previous",
                )
            except UndecryptableSecret:
                existing.unlink()
            else:
                existing.write({"key": "webhook_secret_previous", "ciphertext": kept})
                existing.flush_recordset()  # the new row below reuses the key
                self.sudo().webhook_secret_previous_until = (
                    fields.Datetime.now()
                    + timedelta(hours=self.sudo().secret_rotation_hours)
                )
            existing = credentials
        ciphertext = box.encrypt(value, self.id, key)
        if existing:
            existing.ciphertext = ciphertext
        else:
            credentials.create(
                {"backend_id": self.id, "key": key, "ciphertext": ciphertext}
            )
        self.sudo().credentials_changed_at = fields.Datetime.now()
        self.message_post(body=_("Credential %(key)s changed.", key=key))
        self.env.registry.clear_cache()

    def _qtc_get_secret(self, key, required=True):
        """The plaintext of the backend's secret ``key``, for server-side use only.

        Never return it from a controller, log it, or put it in an error message.

        :param required: raise when the secret is not set; else return ``None``
        :raises BusinessError: the secret is not set (category configuration)
        :raises UndecryptableSecret, KeyConfigError: key problems (fails closed)
        """
        self.ensure_one()
        credential = (
            self.env["qtc.credential"]
            .sudo()
            .search([("backend_id", "=", self.id), ("key", "=", key)], limit=1)
        )
        if not credential:
            if not required:
                return None
            label = next(
                (
                    field.string
                    for field in self._fields.values()
                    if getattr(field, "qtc_secret", None) == key
                ),
                key,
            )
            raise BusinessError(
                _(
                    "Backend %(name)s has no %(key)s configured.",
                    name=self.name,
                    key=label,
                ),
                category="configuration",
                suggested_action=_("Enter it on the backend form (QTC Manager)."),
            )
        return secret_box().decrypt(
            credential.ciphertext, self.id, key, label=f"{key} of backend {self.name}"
        )

    def _qtc_known_secrets(self):
        """Every plaintext secret of the backend, to mask them in logged text."""
        self.ensure_one()
        values = []
        for credential in (
            self.env["qtc.credential"].sudo().search([("backend_id", "=", self.id)])
        ):
            try:
                values.append(
                    secret_box().decrypt(credential.ciphertext, self.id, credential.key)
                )
            except QtcError:
                continue
        return values

    # ---------------------------------------------------------- webhook input

    @api.model
    @tools.ormcache("backend_id")
    def _qtc_webhook_config(self, backend_id):
        """Everything the controller needs to authenticate a webhook, cached per
        process and cleared whenever a backend or credential changes.

        :returns: a ``WebhookConfig`` (secrets as ciphertexts), or ``None``
        """
        backend = self.sudo().with_context(active_test=False).browse(backend_id)
        backend = backend.exists()
        if not backend:
            return None
        credentials = (
            self.env["qtc.credential"]
            .sudo()
            .search(
                [
                    ("backend_id", "=", backend.id),
                    ("key", "in", ("webhook_secret", "webhook_secret_previous")),
                ]
            )
        )
        ordered = sorted(credentials, key=lambda c: c.key != "webhook_secret")
        return WebhookConfig(
            backend.id,
            backend.provider,
            backend.state,
            backend.company_id.id,
            backend.max_body_bytes,
            backend.webhook_tolerance,
            tuple((c.key, c.ciphertext) for c in ordered),
            backend.webhook_secret_previous_until,
            backend.job_channel_id.id or None,
            backend.job_max_attempts or const.DEFAULT_MAX_ATTEMPTS,
            backend.active,
            backend._qtc_sender_networks(),
            backend._qtc_webhook_path() or None,
            backend.technical_user_id.id or None,
        )

    def _qtc_sender_networks(self):
        """The parsed sender networks; one that cannot be read (written around
        the form's check) refuses every sender rather than none."""
        self.ensure_one()
        try:
            return parse_networks(self.sender_networks)
        except ValueError:
            _logger.error(
                "backend %s: unreadable sender networks, every webhook refused",
                self.id,
            )
            return NO_SENDER

    @api.model
    @tools.ormcache("provider")
    def _qtc_inbound_ceiling(self, provider=None):
        """The body cap of an inbound route before its sender is authenticated:
        the largest ``max_body_bytes`` of the backends the route may serve
        (``provider``'s, archived ones included; every backend's for the
        generic route), the same for every backend id, so a 413 answered
        before authentication says nothing about which ids exist. Each
        backend's own cap applies once the sender is authenticated.
        """
        backends = self.sudo().with_context(active_test=False)
        domain = [("provider", "=", provider)] if provider else []
        caps = backends.search(domain).mapped("max_body_bytes")
        return max(caps, default=const.DEFAULT_MAX_BODY_BYTES)

    def _qtc_webhook_secrets(self, config=None):
        """Plaintext webhook secrets now accepted: current first, then the
        previous one during a rotation window."""
        self.ensure_one()
        config = config or self._qtc_webhook_config(self.id)
        # The expiry is checked at each request, not when the config was cached.
        previous_valid = bool(
            config.previous_until and config.previous_until > fields.Datetime.now()
        )
        box = secret_box()
        return [
            box.decrypt(ciphertext, config.backend_id, key)
            for key, ciphertext in config.secrets
            if key == "webhook_secret" or previous_valid
        ]

    def _qtc_store_events(
        self,
        events,
        headers=None,
        config=None,
        batch=False,
        channel=None,
        resources=None,
        spread=False,
    ):
        """Store inbound events and queue one job per new event, in one statement.

        Duplicates (same backend and external id) are acknowledged and change
        nothing: the insert skips them (``ON CONFLICT DO NOTHING``) and no job is
        queued for them. The job worker crons are triggered in the same statement
        and woken after commit.

        :param events: ``InboundEvent`` tuples (payload as text)
        :param headers: request headers worth keeping (dict)
        :param config: the cached ``WebhookConfig``; with it, storing costs
            exactly one SQL statement, new events or duplicates alike
        :param batch: queue one job for all the new events (applied together by
            ``_qtc_handle_events``) instead of one job per event
        :param channel: id of the ``qtc.job.channel`` of the queued job(s),
            instead of the backend's
        :param resources: what each event's job writes, one iterable of
            resource names per event (see ``qtc.job._qtc_enqueue``); ``None``:
            ``_qtc_event_resources(events)``. A job declares those of its events
        :param spread: with ``batch``, one job per job worker at most instead
            of one, so that the batch runs on several workers at once: events
            sharing a resource always go to the same job, and the jobs are
            balanced (see ``lib/resources.assign_lanes``)
        :returns: ``{external_id: event id}`` for the events that were new
        """
        self.ensure_one()
        if not events:
            return {}
        self.env.flush_all()
        config = config or self._qtc_webhook_config(self.id)
        kept = json.dumps(headers or {})
        count = len(events)
        correlation_ids = [uuid.uuid4().hex for _event in events]
        crons = list(self.env["qtc.job"]._qtc_worker_cron_ids())
        # -- resources (concurrency by resource): the job ("lane") of each
        # event and what each job declares.
        if resources is None:
            resources = self._qtc_event_resources(events)
        resources = [resources_lib.normalize(names) for names in resources]
        if batch:
            lanes = resources_lib.assign_lanes(resources, len(crons) if spread else 1)
        else:
            lanes = list(range(count))
        lane_resources = [set() for _lane in range(max(lanes) + 1)]
        for lane, names in zip(lanes, resources, strict=True):
            lane_resources[lane].update(names)
        lane_resources = [resources_lib.encode(names) for names in lane_resources]
        # -- end resources
        # Two deliveries of one event at once: the later may be refused with a
        # serialization failure, which its request (or job) runs again and
        # then finds a duplicate: the mark keeps it out of the error log.
        self.env.cr.execute(
            """
            /* qtc: conflicts retried by the caller */
            WITH new_events AS (
                INSERT INTO qtc_event (
                    backend_id, company_id, provider, external_id, event_type,
                    payload, payload_origin, headers, signature_verified, state,
                    correlation_id, received_at, create_date, write_date,
                    create_uid, write_uid
                )
                SELECT %(backend)s, %(company)s, %(provider)s, e.external_id,
                       e.event_type, e.payload, 'received', %(headers)s,
                       %(verified)s, 'received', e.correlation_id, %(now)s,
                       %(now)s, %(now)s, %(uid)s, %(uid)s
                  FROM unnest(%(ext)s::varchar[], %(types)s::varchar[],
                              %(payloads)s::text[], %(corr)s::varchar[])
                       AS e(external_id, event_type, payload, correlation_id)
                ON CONFLICT (backend_id, external_id) DO NOTHING
                RETURNING id, external_id, correlation_id
            ), new_jobs AS (
                INSERT INTO qtc_job (
                    name, state, model_name, method_name, record_ids, priority,
                    channel_id, attempts, max_attempts, max_backoff, backend_id,
                    event_id, company_id, correlation_id, user_id, create_date,
                    write_date, create_uid, write_uid, resources
                )
                SELECT CASE WHEN %(batch)s
                            THEN 'Process ' || count(*) || ' events'
                            ELSE 'Process event ' || min(ne.external_id) END,
                       'pending', 'qtc.event',
                       CASE WHEN %(batch)s THEN '_qtc_process_batch'
                            ELSE '_qtc_process' END,
                       jsonb_agg(ne.id ORDER BY ne.id), 10, %(channel)s, 0,
                       %(max_attempts)s, %(max_backoff)s, %(backend)s,
                       CASE WHEN %(batch)s THEN NULL ELSE min(ne.id) END,
                       %(company)s,
                       CASE WHEN %(batch)s THEN NULL ELSE min(ne.correlation_id) END,
                       %(runner)s, %(now)s, %(now)s, %(uid)s, %(uid)s,
                       (%(lane_resources)s::text[])[l.lane + 1]
                  FROM new_events ne
                  JOIN unnest(%(corr)s::varchar[], %(lanes)s::int[])
                       AS l(correlation_id, lane)
                    ON l.correlation_id = ne.correlation_id
                 GROUP BY l.lane
                RETURNING id
            ), wake AS (
                INSERT INTO ir_cron_trigger (
                    cron_id, call_at, create_date, write_date, create_uid, write_uid
                )
                SELECT c.id, %(now)s, %(now)s, %(now)s, %(uid)s, %(uid)s
                  FROM ir_cron c
                 WHERE c.id = ANY(%(crons)s) AND c.active
                   AND EXISTS (SELECT 1 FROM new_jobs)
            )
            SELECT external_id, id FROM new_events
            """,
            {
                "backend": self.id,
                "company": config.company_id,
                "provider": config.provider,
                "headers": kept,
                "verified": True,
                "now": fields.Datetime.now(),
                "uid": self.env.uid,
                "ext": [e.external_id for e in events],
                "types": [e.event_type for e in events],
                "payloads": [e.payload for e in events],
                "corr": correlation_ids,
                "channel": channel or config.channel_id,
                "max_attempts": config.max_attempts,
                "max_backoff": const.DEFAULT_MAX_BACKOFF,
                "batch": bool(batch),
                # The sender's work runs as the backend's technical user (a job
                # without one fails saying so; it never runs as the superuser).
                "runner": config.technical_user_id,
                "crons": crons,
                "lanes": lanes,
                "lane_resources": lane_resources,
            },
        )
        stored = dict(self.env.cr.fetchall())
        if stored:
            self.env["qtc.job"]._qtc_notify_workers()
        _logger.debug("backend %s: %s of %s events new", self.id, len(stored), count)
        return stored

    # ------------------------------------------------------------- outbound

    def _qtc_destination_policy(self):
        """Where this backend's requests may go (see ``lib/destinations.py``):
        its provider's hosts (``_qtc_outbound_hosts``) plus what the server
        configuration allows (``qtc_allowed_hosts``, ``qtc_allowed_networks``
        in the Odoo configuration file, never in the database); https only
        for a production backend; stored secrets only to the provider.

        :raises OutboundRefused: the server options cannot be read
        """
        self.ensure_one()
        allowed_hosts, allowed_networks = server_destinations(
            server_option("qtc_allowed_hosts"), server_option("qtc_allowed_networks")
        )
        labels = dict(self._fields["provider"]._description_selection(self.env))
        return DestinationPolicy(
            provider_label=labels.get(self.provider, self.provider),
            provider_hosts=tuple(self._qtc_outbound_hosts()),
            allowed_hosts=allowed_hosts,
            allowed_networks=allowed_networks,
            require_https=self.environment == "production",
            secrets_to_provider_only=True,
        )

    def _qtc_outbound_url_problem(self, url):
        """Why this backend could not send to ``url``, for a form check: the
        same rules as the HTTP client without the DNS lookup (names are
        checked again at every connection).

        :returns: a message saying what to change, or ``None``
        """
        self.ensure_one()
        try:
            self._qtc_destination_policy().check_url(url)
        except OutboundRefused as exc:
            return str(exc)
        return None

    def _qtc_http(self):
        """The backend's ``HttpClient`` (one per backend and process, rebuilt when
        the backend changes), with its rate limit, its destination policy and
        its secrets (for redaction, and so they are sent nowhere else)."""
        self.ensure_one()
        # Rebuilt when a setting it uses or a credential (masked in its logs)
        # changes; other writes to the backend keep the connection pool.
        cache_key = (
            self.env.cr.dbname,
            self.id,
            self.rate_limit_per_second,
            self.timeout_seconds,
            str(self.sudo().credentials_changed_at),
            self.provider,
            self.environment,
            server_option("qtc_allowed_hosts"),
            server_option("qtc_allowed_networks"),
        )
        with _http_clients_lock:
            client = _http_clients.get(cache_key)
            if client is None:
                for stale in [k for k in _http_clients if k[:2] == cache_key[:2]]:
                    _http_clients.pop(stale).session.close()
                limiter = (
                    TokenBucket(self.rate_limit_per_second)
                    if self.rate_limit_per_second > 0
                    else None
                )
                timeout = self.timeout_seconds or 30.0
                client = HttpClient(
                    secrets=self._qtc_known_secrets(),
                    rate_limiter=limiter,
                    timeout=(min(10.0, timeout), timeout),
                    policy=self._qtc_destination_policy(),
                )
                _http_clients[cache_key] = client
        return client

    def _qtc_request(self, method, url, **kwargs):
        """Send one outbound request through the backend's client, tagged with
        the correlation id of the event or job being processed.

        :raises RetryableError, HttpBusinessError: see ``lib/http.py``
        :raises OutboundRefused: a destination this backend may not reach
            (nothing was sent; the message says what to change)
        """
        self.ensure_one()
        kwargs.setdefault("correlation_id", self.env.context.get("qtc_correlation_id"))
        return self._qtc_http().request(method, url, **kwargs)

    # ------------------------------------------------------------------ hooks

    def _qtc_webhook_path(self):
        """Path of the provider's webhook endpoint for this backend.

        :returns: a path like ``/qtc/webhook/7``, or ``False`` when the provider
            receives no webhooks
        """
        self.ensure_one()
        return f"/qtc/webhook/{self.id}"

    def _qtc_binding_models(self):
        """The external types this backend binds, and the Odoo models each may
        be bound to: ``{external type: (model name, ...)}``.

        ``qtc.binding`` refuses any other type, and a record of another model;
        the exception queue's Link offers the same. Default: nothing (a
        backend without a provider binds nothing).
        """
        self.ensure_one()
        return {}

    def _qtc_outbound_hosts(self):
        """The hosts this provider's requests go to, as the provider documents
        them: names, or ``*.domain`` for any name under a domain. Requests
        carry the backend's credentials, so nothing else is called (the
        server configuration may add a local stand-in).

        :returns: a tuple of host patterns; empty when the provider is a
            system of the customer's own choosing (then any public address,
            and no stored secret may travel)
        """
        self.ensure_one()
        return ()

    def _qtc_test_connection(self):
        """Check the credentials against the remote system.

        :returns: a short message for the user on success
        :raises QtcError or UserError: what is wrong, without secrets
        """
        self.ensure_one()
        return _("This backend has no provider to test.")

    def _qtc_webhook_verify(self, body, headers, config):
        """Authenticate a webhook request before anything parses its body.

        Default: the QTC scheme, ``X-QTC-Signature: t=<unix>,v1=<hex>``.

        :param body: the raw request body (bytes)
        :param headers: the request headers (case-insensitive mapping)
        :param config: the cached ``WebhookConfig``
        :raises signature.SignatureError: not authentic (answered 401)
        """
        self.ensure_one()
        signature.verify(
            headers.get(signature.HEADER),
            body,
            self._qtc_webhook_secrets(config),
            tolerance=config.tolerance,
        )

    def _qtc_webhook_parse(self, body, headers):
        """Split an authenticated body into events.

        Default: one JSON object with ``id`` and ``type``.

        :returns: a list of ``InboundEvent``
        :raises ValueError: a malformed body, with a message for the sender
            (answered 400; the raw body is kept for audit)
        """
        self.ensure_one()
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        missing = [key for key in ("id", "type") if not data.get(key)]
        if missing:
            raise ValueError(f"missing field(s): {', '.join(missing)}")
        return [
            InboundEvent(str(data["id"])[:255], str(data["type"])[:128], body.decode())
        ]

    def _qtc_handle_events(self, events):
        """Apply several stored events in one job (stored with ``batch=True``).

        Default: each event through ``_qtc_handle_event`` in its own savepoint; a
        business error opens an exception for that event and the others go on.
        A transient error fails the whole job, which retries; events already
        applied are recognised by the provider's idempotency on the retry.
        Providers override it to apply a batch with bulk queries.

        :returns: ``{event id: (state, text)}`` with state ``done``, ``ignored``
            or ``failed``
        """
        self.ensure_one()
        outcomes = {}
        total = len(events)
        jobs = self.env["qtc.job"]
        for position, event in enumerate(events, start=1):
            backend = self.with_context(
                qtc_correlation_id=event.correlation_id, qtc_event_id=event.id
            )
            try:
                with self.env.cr.savepoint():
                    outcome = backend._qtc_handle_event(event)
            except BUSINESS_ERRORS as error:
                self.env["qtc.exception"]._qtc_open(
                    error
                    if isinstance(error, BusinessError)
                    else BusinessError(str(error)),
                    backend=self,
                    event=event,
                    correlation_id=event.correlation_id,
                )
                outcomes[event.id] = ("failed", str(error))
            else:
                state = "ignored" if outcome == "ignored" else "done"
                outcomes[event.id] = (state, outcome)
            if position % 100 == 0 or position == total:
                jobs._qtc_progress(position, total, _("%s events applied", position))
        return outcomes

    def _qtc_event_resources(self, events):
        """What the jobs of ``events`` will write, named when they are queued
        from what each event already says (``sale.order:42``, or a stable key
        such as ``x.account:<backend id>:<external id>`` when only the sender's
        ids are known). The queue never runs two jobs sharing a resource at
        once; jobs on other resources run in parallel. See ``lib/resources.py``.

        Called by ``_qtc_store_events`` (on ``InboundEvent`` tuples, while the
        sender waits: keep it to parsing, a few queries at most) and when a
        stored event is queued again (``qtc.event`` records); both have
        ``event_type`` and ``payload``. Default: nothing declared.

        :returns: one list of resource names per event, in order
        """
        return [[] for _event in events]

    def _qtc_technical_user(self):
        """The user that runs this backend's work from its sender, its
        schedules and their follow-ups (an empty record when none is set: the
        jobs then fail saying so). Pass it as ``_qtc_enqueue(..., user=...)``."""
        self.ensure_one()
        # Boundary (read): whoever queues system work (a salesperson, a
        # webhook) may not read the backend's configuration.
        return self.sudo().technical_user_id

    def _qtc_replay_payload(self, event):
        """The event as its source has it now, read again for a replay, so a
        person's replay never trusts a stored (possibly edited) payload where
        the source can answer.

        Default: ``None``, the stored payload is applied (with the rights of
        the user the replay runs as: see ``qtc.event._qtc_replay``).

        :param event: the ``qtc.event`` being replayed
        :returns: the payload text to apply instead, or ``None``
        :raises BusinessError: the source refuses the event (nothing applied)
        :raises RetryableError: the source cannot answer now
        """
        self.ensure_one()

    def _qtc_webhook_answer(self, events, stored):
        """The 2xx answer once events are stored.

        :param events: the parsed ``InboundEvent`` list
        :param stored: ``{external_id: event id}`` of the new ones (the rest
            were duplicates)
        """
        self.ensure_one()
        return request_json(
            {
                "received": len(events),
                "new": len(stored),
                "duplicates": len(events) - len(stored),
            }
        )

    def _qtc_webhook_error(self, status, message):
        """The answer to a rejected request, in the sender's expected format.

        :param message: short, safe reason (never a secret or a stack trace)
        """
        self.ensure_one()
        return request_json({"error": message}, status=status)

    def _qtc_handle_event(self, event):
        """Apply one stored event to Odoo; called by the event's job.

        :param event: the ``qtc.event`` record
        :returns: a short text describing what was done, or ``"ignored"`` for
            event types the provider does not handle (never an error)
        :raises RetryableError: try again later (e.g. the payment a refund
            refers to has not arrived yet)
        :raises BusinessError: a person must act
        """
        self.ensure_one()
        raise BusinessError(
            _("Provider %(provider)s does not handle events.", provider=self.provider),
            category="configuration",
        )
