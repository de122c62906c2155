from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

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

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        lines._qtc_check_target()
        return lines

    def write(self, vals):
        result = super().write(vals)
        if {"map_id", "res_id", "record_ref"} & set(vals):
            self._qtc_check_target()
            # Rules are checked before a write only (a line moved to a map of
            # another company is refused after it).
            self.check_access("write")
        return result

    def _qtc_check_target(self):
        """A line of a map with a target model points at an existing record the
        user can read, of the map's backend's company (or shared with it).

        :raises ValidationError: missing record or other company
        :raises AccessError: the user cannot read the record
        """
        for line in self.filtered(lambda item: item.target_model and item.res_id):
            if line.target_model not in self.env:
                continue  # the map's own constraint names it
            record = self.env[line.target_model].browse(line.res_id)
            if not record.exists():
                raise ValidationError(
                    _(
                        "Value %(value)r points to %(model)s %(id)s, which does "
                        "not exist.",
                        value=line.external_value,
                        model=line.target_model,
                        id=line.res_id,
                    )
                )
            record.check_access("read")
            backend = line.map_id.backend_id
            company = (
                record.sudo().company_id if "company_id" in record._fields else None
            )
            if backend and company and company not in backend.company_id.parent_ids:
                raise ValidationError(
                    _(
                        "Value %(value)r points to %(record)s of %(company)s, not "
                        "of the company of backend %(backend)s.",
                        value=line.external_value,
                        record=record.sudo().display_name,
                        company=company.display_name,
                        backend=backend.display_name,
                    )
                )

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
