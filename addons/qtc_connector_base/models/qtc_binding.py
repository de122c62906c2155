import hashlib
import json

from odoo import _, api, fields, models


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

        :returns: the ``qtc.binding``
        """
        values = {
            "res_model": record._name,
            "res_id": record.id,
            "correlation_id": self.env.context.get("qtc_correlation_id"),
        }
        if updated_at:
            values["external_updated_at"] = updated_at
        if payload is not None:
            values["payload_hash"] = payload_hash(payload)
        binding = self._qtc_lookup(backend, external_type, external_id)
        if binding:
            binding.write(values)
            return binding
        return self.create(
            {
                **values,
                "backend_id": backend.id,
                "external_type": external_type,
                "external_id": str(external_id),
            }
        )

    @api.model
    def _qtc_unbind(self, backend, external_type, external_id):
        """Remove a binding; the Odoo record stays. Returns True if one existed."""
        binding = self._qtc_lookup(backend, external_type, external_id)
        binding.unlink()
        return bool(binding)

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
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
            "name": _("Bound record"),
        }
