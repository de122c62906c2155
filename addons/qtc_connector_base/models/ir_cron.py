from odoo import api, models


class IrCron(models.Model):
    """Keeps the cached list of job worker crons right when an administrator
    adds, changes or removes a scheduled action (e.g. duplicates a worker)."""

    _inherit = "ir.cron"

    @api.model_create_multi
    def create(self, vals_list):
        crons = super().create(vals_list)
        self.env.registry.clear_cache()
        return crons

    def write(self, vals):
        result = super().write(vals)
        if {"active", "code", "model_id", "ir_actions_server_id"} & set(vals):
            self.env.registry.clear_cache()
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result
