"""Jobs declare what they write; parallel apply lanes are gone.

Jobs of one engagement no longer need a lane (a job channel of capacity 1) to
stay apart: the queue keeps jobs sharing a project or sale order from running
at once. Pending jobs still waiting on a former lane go to their backend's
channel and, like every pending PSA batch, declare the projects and orders of
their items. The lane channels themselves are kept (an administrator may
delete them); the table that tied them to backends is dropped.
"""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    cr.execute("SELECT to_regclass('qtc_backend_psa_apply_channel_rel')")
    if cr.fetchone()[0]:
        cr.execute(
            """
            UPDATE qtc_job j
               SET channel_id = b.job_channel_id
              FROM qtc_backend_psa_apply_channel_rel lane, qtc_backend b
             WHERE j.state = 'pending' AND j.backend_id = lane.backend_id
               AND j.channel_id = lane.channel_id AND b.id = lane.backend_id
            """
        )
        cr.execute("DROP TABLE qtc_backend_psa_apply_channel_rel")
    env = api.Environment(cr, SUPERUSER_ID, {})
    backends = env["qtc.backend"].search([("provider", "in", ("psa_push", "harvest"))])
    env["qtc.job"]._qtc_declare_pending_resources(backends)
