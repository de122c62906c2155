from odoo import _, fields, models

from ..access import GROUP_USER, check_action


class QtcTraceMixin(models.AbstractModel):
    """Makes a business model "traceable": a Trace button on its form and in its
    Action menu opens, in order, every event and job that led to the record.

    A connector registers a model it touches by adding this mixin to it::

        class AccountMove(models.Model):
            _name = "account.move"
            _inherit = ["account.move", "qtc.trace.mixin"]

    Several connectors may register the same model: Odoo keeps the mixin once in
    the model's parents, and the base creates the model's button and action once
    (see ``qtc.trace._qtc_sync_trace_ui``), whoever asked for it.
    """

    _name = "qtc.trace.mixin"
    _description = "QTC Traceable record"

    # One2many/Many2many fields whose records' trace lines belong to this
    # record's trace too (an order's lines for its order). Connectors add names;
    # the union of every connector's list is used.
    _qtc_trace_related_fields = ()

    qtc_trace_count = fields.Integer(
        string="Trace",
        compute="_compute_qtc_trace_count",
        groups="qtc_connector_base.group_qtc_user",
        help="Changes the QTC connectors made to this record (and its lines), "
        "and exceptions naming it.",
    )

    def _compute_qtc_trace_count(self):
        counts = self.env["qtc.trace"]._qtc_count_for_records(self)
        for record in self:
            record.qtc_trace_count = counts.get(record.id, 0)

    def _qtc_trace_scope(self):
        """The records whose trace lines make up the trace of ``self``:
        ``{record id: [(model name, ids)...]}``."""
        # Each connector's class sets its own list: take them all.
        declared = (
            name
            for cls in type(self).__mro__
            for name in vars(cls).get("_qtc_trace_related_fields", ())
        )
        names = [name for name in dict.fromkeys(declared) if name in self._fields]
        scope = {}
        for record in self:
            pairs = [(record._name, [record.id])]
            for name in names:
                related = record[name]
                if related:
                    pairs.append((related._name, related.ids))
            scope[record.id] = pairs
        return scope

    def action_qtc_trace(self):
        """The Trace button: the events and jobs behind these records, in order
        (QTC Users who can read the records)."""
        check_action(self, GROUP_USER, "read", _("open the trace of a record"))
        return self.env["qtc.trace"]._qtc_action_for_record(self)
