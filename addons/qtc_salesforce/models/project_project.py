from odoo import models


class ProjectProject(models.Model):
    # Projects are created by confirming the orders Salesforce opportunities
    # become: traceable.
    _name = "project.project"
    _inherit = ["project.project", "qtc.trace.mixin"]
