from odoo import fields, models


class QtcBenchRow(models.Model):
    _name = "qtc.bench.row"
    _description = "Benchmark row"

    payload = fields.Text()
