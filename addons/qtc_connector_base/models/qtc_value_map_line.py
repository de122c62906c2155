from odoo import _, api, fields, models

from ..lib.errors import BusinessError


class QtcValueMapLine(models.Model):
    _name = "qtc.value.map.line"
    _description = "QTC Value Map Line"
    _order = "map_id, external_value"

    map_id = fields.Many2one(
        "qtc.value.map", required=True, ondelete="cascade", index=True
    )
    external_value = fields.Char(required=True)
    target_model = fields.Char(related="map_id.target_model")
    res_id = fields.Many2oneReference(
        model_field="target_model", string="Odoo record id"
    )
    record_ref = fields.Reference(
        selection="_selection_record_ref",
        compute="_compute_record_ref",
        inverse="_inverse_record_ref",
        string="Odoo record",
    )
    value = fields.Char(help="Plain value, for maps without a target model.")

    _sql_constraints = [
        (
            "external_uniq",
            "unique(map_id, external_value)",
            "An external value is mapped once per map.",
        )
    ]

    @api.model
    def _selection_record_ref(self):
        return [
            (model.model, model.name)
            for model in self.env["ir.model"].sudo().search([])
        ]

    @api.depends("res_id", "target_model")
    def _compute_record_ref(self):
        for line in self:
            line.record_ref = (
                f"{line.target_model},{line.res_id}"
                if line.target_model and line.res_id
                else False
            )

    def _inverse_record_ref(self):
        for line in self:
            line.res_id = line.record_ref.id if line.record_ref else False

    def _qtc_value(self):
        self.ensure_one()
        if self.target_model:
            record = self.env[self.target_model].browse(self.res_id).exists()
            if not record:
                raise BusinessError(
                    _(
                        "Value %(value)r of map %(map)s points to a deleted record.",
                        value=self.external_value,
                        map=self.map_id.name,
                    ),
                    category="mapping",
                )
            return record
        return self.value
