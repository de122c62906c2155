"""Jobs declare what they write: pending event jobs queued before that get the
resources (the payment, customer and invoice each event names) their backend
now declares, so the queue keeps them apart from the jobs queued after the
upgrade."""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    backends = env["qtc.backend"].search([("provider", "=", "stripe")])
    env["qtc.job"]._qtc_declare_pending_resources(backends)
