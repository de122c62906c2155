import hashlib
import json

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..access import GROUP_USER, check_action

# Fields that decide what a binding points at, checked after every write.
TARGET_FIELDS = {"backend_id", "external_type", "res_model", "res_id"}


def payload_hash(payload):
    """Stable sha256 of a JSON-able payload (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class QtcBinding(models.Model):
    """The link between one external record and one Odoo record.

    Binder vocabulary: ``_qtc_to_internal`` (external id -> record),
    ``_qtc_to_external`` (record -> external id), ``_qtc_bind`` (create or move
    the link), ``_qtc_unbind``. ``external_updated_at`` and ``payload_hash`` let a
    connector skip stale updates and identical re-deliveries (including the echo
    of its own write-back).

    A binding may only point at a record of the model its external type maps
    to (``qtc.backend._qtc_binding_models``), that exists, that the user
    writing it can read, and of the backend's company (or shared with it):
    checked on create and after every write that changes its target, so that
    no one binds an external record to a record of another model or company.
    QTC Managers edit bindings by hand; connectors and the exception queue's
    Link write them through ``_qtc_bind``.
    """

    _name = "qtc.binding"
    _description = "QTC Binding"
    _order = "id desc"
    _rec_name = "external_id"

    backend_id = fields.Many2one(
        "qtc.backend", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="backend_id.company_id", store=True)
    external_type = fields.Char(
        required=True, help="e.g. Account, Opportunity, customer"
    )
    external_id = fields.Char(required=True)
    res_model = fields.Char(required=True, index=True)
    res_id = fields.Many2oneReference(
        model_field="res_model", required=True, index=True
    )
    external_updated_at = fields.Datetime()
    payload_hash = fields.Char()
    correlation_id = fields.Char(
        help="Correlation id of the event that last changed it."
    )

    _sql_constraints = [
        (
            "external_uniq",
            "unique(backend_id, external_type, external_id)",
            "An external record is bound once per backend.",
        )
    ]

    # ------------------------------------------------------------------- CRUD

    @api.model_create_multi
    def create(self, vals_list):
        bindings = super().create(vals_list)
        bindings._qtc_check_target()
        return bindings

    def write(self, vals):
        result = super().write(vals)
        if TARGET_FIELDS & set(vals):
            self._qtc_check_target()
            # Record rules are checked before a write only: a binding moved to
            # another company's backend is refused after it.
            self.check_access("write")
        return result

    def _qtc_check_target(self):
        """Refuse bindings whose target is not the model their external type
        maps to, does not exist, is not readable by the current user, or
        belongs to another company than the backend's.

        :raises ValidationError: wrong model, missing record, other company
        :raises AccessError: the user cannot read the target
        """
        by_model = {}
        for binding in self:
            allowed = binding.backend_id._qtc_binding_models().get(
                binding.external_type
            )
            if not allowed:
                raise ValidationError(
                    _(
                        "Backend %(backend)s binds no external type %(type)r.",
                        backend=binding.backend_id.display_name,
                        type=binding.external_type,
                    )
                )
            if binding.res_model not in allowed:
                raise ValidationError(
                    _(
                        "A %(type)s is bound to a record of %(allowed)s, not of "
                        "%(model)s.",
                        type=binding.external_type,
                        allowed=", ".join(allowed),
                        model=binding.res_model,
                    )
                )
            by_model.setdefault(binding.res_model, []).append(binding.id)
        for model, binding_ids in by_model.items():
            bindings = self.browse(binding_ids)
            if model not in self.env:
                raise ValidationError(_("Model %s is not installed.", model))
            targets = self.env[model].browse(bindings.mapped("res_id"))
            missing = targets - targets.exists()
            if missing:
                raise ValidationError(
                    _(
                        "Record %(model)s %(ids)s does not exist.",
                        model=model,
                        ids=", ".join(map(str, missing.ids)),
                    )
                )
            targets.check_access("read")
            if "company_id" not in targets._fields:
                continue
            # sudo: the company of a record the user may read, for the check.
            company_of = {t.id: t.company_id for t in targets.sudo()}
            for binding in bindings:
                company = company_of[binding.res_id]
                if company and company not in binding.backend_id.company_id.parent_ids:
                    raise ValidationError(
                        _(
                            "%(record)s belongs to %(company)s, not to the company "
                            "of backend %(backend)s.",
                            record=targets.browse(binding.res_id).sudo().display_name,
                            company=company.display_name,
                            backend=binding.backend_id.display_name,
                        )
                    )

    # --------------------------------------------------------------- binder

    @api.model
    def _qtc_lookup(self, backend, external_type, external_id):
        return self.search(
            [
                ("backend_id", "=", backend.id),
                ("external_type", "=", external_type),
                ("external_id", "=", str(external_id)),
            ],
            limit=1,
        )

    @api.model
    def _qtc_to_internal(self, backend, external_type, external_id):
        """The bound Odoo record, or an empty recordset of no model (falsy)."""
        binding = self._qtc_lookup(backend, external_type, external_id)
        if not binding:
            return None
        return self.env[binding.res_model].browse(binding.res_id).exists() or None

    @api.model
    def _qtc_to_external(self, backend, record, external_type=None):
        """The external id bound to ``record``, or None."""
        domain = [
            ("backend_id", "=", backend.id),
            ("res_model", "=", record._name),
            ("res_id", "=", record.id),
        ]
        if external_type:
            domain.append(("external_type", "=", external_type))
        binding = self.search(domain, limit=1)
        return binding.external_id if binding else None

    @api.model
    def _qtc_bind(
        self, backend, external_type, external_id, record, updated_at=None, payload=None
    ):
        """Create or update the binding of an external record to ``record``.

        The caller must be able to read ``record`` and the backend; the
        binding itself is then written by the system (finance users linking
        from an exception may not edit bindings by hand), with the checks of
        ``_qtc_check_target``.

        :returns: the ``qtc.binding``
        :raises AccessError: the caller cannot read ``record`` or the backend
        :raises ValidationError: see ``_qtc_check_target``
        """
        record.ensure_one()
        record.check_access("read")
        backend.check_access("read")
        values = {
            "res_model": record._name,
            "res_id": record.id,
            "correlation_id": self.env.context.get("qtc_correlation_id"),
        }
        if updated_at:
            values["external_updated_at"] = updated_at
        if payload is not None:
            values["payload_hash"] = payload_hash(payload)
        # The system's write, on the caller's checked request (see above).
        bindings_sudo = self.sudo()
        binding_sudo = bindings_sudo._qtc_lookup(backend, external_type, external_id)
        if binding_sudo:
            binding_sudo.write(values)
            return binding_sudo.with_env(self.env)
        binding_sudo = bindings_sudo.create(
            {
                **values,
                "backend_id": backend.id,
                "external_type": external_type,
                "external_id": str(external_id),
            }
        )
        return binding_sudo.with_env(self.env)

    @api.model
    def _qtc_unbind(self, backend, external_type, external_id):
        """Remove a binding; the Odoo record stays. Returns True if one existed.

        Server-side bookkeeping of a connector: the caller must be able to read
        the backend; the binding is removed by the system.
        """
        backend.check_access("read")
        binding_sudo = self.sudo()._qtc_lookup(backend, external_type, external_id)
        binding_sudo.unlink()
        return bool(binding_sudo)

    def _qtc_change_kind(self, updated_at=None, payload=None, digest=None):
        """How an incoming version compares with what the binding last applied.

        :param digest: a hash the connector computed itself (e.g. leaving out
            volatile fields), used instead of hashing ``payload``
        :returns: ``"stale"`` (older than applied), ``"identical"`` (same
            payload hash) or ``"newer"``
        """
        self.ensure_one()
        if (
            updated_at
            and self.external_updated_at
            and updated_at < self.external_updated_at
        ):
            return "stale"
        if digest is None and payload is not None:
            digest = payload_hash(payload)
        if digest is not None and self.payload_hash == digest:
            return "identical"
        return "newer"

    def action_open_record(self):
        """Open the bound record (QTC Users who can read it)."""
        self.ensure_one()
        check_action(self, GROUP_USER, "read", _("open a bound record"))
        if self.res_model in self.env:
            self.env[self.res_model].browse(self.res_id).check_access("read")
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
            "name": _("Bound record"),
        }
