from odoo import models


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _pre_dispatch(cls, rule, args):
        # Webhook routes (declared with controllers.inbound.inbound_route) cap,
        # check the sender and read their body here, before anything else of
        # Odoo reads it: the dispatcher parses form bodies right after.
        route = rule.endpoint.routing.get("qtc_inbound")
        if route is not None:
            route.admit(args.get("backend_id"))
        super()._pre_dispatch(rule, args)
