from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..lib.errors import BusinessError


class QtcValueMap(models.Model):
    """An admin-editable table from external codes to Odoo records or values:
    products, payment terms, taxes, stages, pricelists...

    Looked up by a stable ``code`` (e.g. ``salesforce.product``) so connectors
    find their map without knowing its database id.
    """

    _name = "qtc.value.map"
    _description = "QTC Value Map"
    _inherit = ["mail.thread"]
    _order = "name"

    name = fields.Char(required=True, tracking=True)
    code = fields.Char(
        required=True, help="Technical key connectors look the map up by."
    )
    backend_id = fields.Many2one(
        "qtc.backend", ondelete="cascade", help="Empty: shared by every backend."
    )
    target_model = fields.Char(
        help="Odoo model the values point to (e.g. product.product); "
        "empty for plain values."
    )
    line_ids = fields.One2many("qtc.value.map.line", "map_id", copy=True)
    line_count = fields.Integer(compute="_compute_line_count")

    _sql_constraints = [
        (
            "code_backend_uniq",
            "unique(code, backend_id)",
            "One map per code and backend.",
        )
    ]

    @api.depends("line_ids")
    def _compute_line_count(self):
        for value_map in self:
            value_map.line_count = len(value_map.line_ids)

    @api.constrains("target_model")
    def _check_target_model(self):
        for value_map in self:
            if value_map.target_model and value_map.target_model not in self.env:
                raise ValidationError(
                    _("Model %s does not exist.", value_map.target_model)
                )

    def write(self, vals):
        result = super().write(vals)
        if {"backend_id", "target_model"} & set(vals):
            # Record rules are checked before a write only: a map moved to
            # another company's backend is refused after it; its lines must
            # still point at records of the backend's company.
            self.check_access("write")
            self.line_ids._qtc_check_target()
        return result

    @api.model
    def _qtc_find(self, code, backend=None):
        """The map for ``code``: the backend's own first, else the shared one."""
        maps = self.search(
            [
                ("code", "=", code),
                ("backend_id", "in", [backend.id if backend else False, False]),
            ]
        )
        return maps.filtered("backend_id")[:1] or maps[:1]

    @api.model
    def _qtc_map(self, code, external_value, backend=None, required=True):
        """Translate ``external_value`` through the map ``code``.

        :returns: the Odoo record (maps with a target model) or the mapped text;
            ``None`` when unmapped and not required
        :raises BusinessError: unmapped value or missing map (category mapping),
            naming the code and the map so a person can add the line and replay
        """
        value_map = self._qtc_find(code, backend)
        line = value_map.line_ids.filtered(
            lambda item: item.external_value == str(external_value)
        )[:1]
        if line:
            return line._qtc_value()
        if not required:
            return None
        if not value_map:
            message = _(
                "No value map %(code)s exists to translate %(value)r.",
                code=code,
                value=external_value,
            )
        else:
            message = _(
                "Value %(value)r is not mapped in %(map)s (%(code)s).",
                value=external_value,
                map=value_map.name,
                code=code,
            )
        raise BusinessError(
            message,
            category="mapping",
            problems=[message],
            suggested_action=_("Add the value to the map, then retry."),
            records=[("qtc.value.map", value_map.id)] if value_map else [],
        )
