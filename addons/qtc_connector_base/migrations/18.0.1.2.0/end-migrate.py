"""Jobs run as users, never as the superuser: every company gets its QTC
service user and every backend a technical user (its company's service user).

At the end of the update, once every module's fields are loaded, so that
creating the users sees the whole registry.
"""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["res.company"]._qtc_install_service_users()
