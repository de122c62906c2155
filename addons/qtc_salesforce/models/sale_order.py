from odoo import _, models

from .. import const


class SaleOrder(models.Model):
    # Orders come from opportunities, line by line: an order's trace includes
    # its lines'.
    _name = "sale.order"
    _inherit = ["sale.order", "qtc.trace.mixin"]
    _qtc_trace_related_fields = ("order_line",)

    def _salesforce_bindings(self):
        """Opportunity bindings of these orders (any Salesforce backend).

        Read as superuser: whoever confirms an order or posts an invoice need
        not be a QTC user for its status to be written back. The returned
        bindings are sudoed; callers only flag them and queue the job.
        """
        return (
            self.env["qtc.binding"]
            .sudo()
            .search(
                [
                    ("external_type", "=", const.BINDING_OPPORTUNITY),
                    ("res_model", "=", "sale.order"),
                    ("res_id", "in", self.ids),
                    ("backend_id.provider", "=", const.PROVIDER),
                ]
            )
        )

    def _action_confirm(self):
        result = super()._action_confirm()
        bound = self._salesforce_bindings()
        if bound:
            orders = self.browse(bound.mapped("res_id"))
            orders._salesforce_create_milestones()
            orders._salesforce_request_writeback()
        return result

    def _salesforce_create_milestones(self):
        """Milestones of the milestone-billed lines of confirmed orders.

        Odoo creates one milestone for a milestone line whose product creates
        a project; a line with a Salesforce schedule gets one milestone per
        installment instead (its share of the quantity or revenue, due on the
        installment date), and a milestone line whose product creates no
        project of its own gets its milestones in the order's project.
        """
        milestones = self.env["project.milestone"].sudo()
        for order in self:
            lines = order.order_line.filtered(
                lambda line: line.product_id.service_policy == "delivered_milestones"
            )
            for line in lines:
                project = line.project_id or line.task_id.project_id or order.project_id
                if not project:
                    continue
                existing = milestones.search([("sale_line_id", "=", line.id)])
                shares = line._salesforce_schedule_shares()
                if not shares:
                    if not existing:
                        milestones.create(
                            {
                                "name": line.name.split("\n")[0],
                                "project_id": project.id,
                                "sale_line_id": line.id,
                                "quantity_percentage": 1,
                            }
                        )
                    continue
                title = line.name.split("\n")[0]
                for position, (deadline, share) in enumerate(shares):
                    values = {
                        "name": _(
                            "%(title)s (%(n)s/%(total)s)",
                            title=title,
                            n=position + 1,
                            total=len(shares),
                        ),
                        "project_id": project.id,
                        "sale_line_id": line.id,
                        "quantity_percentage": share,
                        "deadline": deadline,
                    }
                    if position < len(existing):
                        existing[position].write(values)
                    else:
                        milestones.create(values)
                # Milestones beyond the schedule would bill the line twice.
                existing[len(shares) :].filtered(lambda m: not m.is_reached).unlink()

    def _salesforce_request_writeback(self):
        """Flag the orders' opportunities for write-back and queue the job."""
        for binding in self._salesforce_bindings():
            backend = binding.backend_id
            if backend.state != "active" or not backend.salesforce_writeback_enabled:
                continue
            binding.salesforce_writeback_pending = True
            backend._salesforce_enqueue_writeback()

    def _salesforce_writeback_values(self, backend):
        """Field values to write on the order's Opportunity.

        :returns: ``{field API name: value}`` for the fields the backend names
        """
        self.ensure_one()
        invoices = self.invoice_ids.filtered(
            lambda move: (
                move.state == "posted"
                and move.move_type in ("out_invoice", "out_refund")
            )
        )
        values = {}
        if backend.salesforce_order_field:
            values[backend.salesforce_order_field] = self.name
        if backend.salesforce_invoice_status_field:
            values[backend.salesforce_invoice_status_field] = self._salesforce_status(
                invoices
            )
        if backend.salesforce_balance_field:
            due = sum(invoices.mapped("amount_residual_signed"))
            values[backend.salesforce_balance_field] = (
                self.company_id.currency_id.round(due)
            )
        return values

    def _salesforce_status(self, invoices):
        """``ordered``, ``invoiced``, ``partially paid`` or ``paid`` (or the
        order state when it is not confirmed)."""
        if not invoices:
            return "ordered" if self.state == "sale" else self.state
        states = set(
            invoices.filtered(lambda m: m.move_type == "out_invoice").mapped(
                "payment_state"
            )
        )
        if states and states <= {"paid", "in_payment", "reversed"}:
            return "paid"
        if states & {"paid", "in_payment", "partial"}:
            return "partially paid"
        return "invoiced"
