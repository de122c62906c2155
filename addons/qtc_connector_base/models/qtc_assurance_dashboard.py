from odoo import _, api, fields, models
from odoo.tools.misc import format_amount, format_datetime

from ..access import GROUP_USER, check_group
from ..lib import assurance


class QtcAssuranceDashboard(models.AbstractModel):
    """What the finance dashboard shows: one card per check, per service
    level and per reconciliation, in business words, read with the caller's
    rights (record rules keep each company's figures to its users)."""

    _name = "qtc.assurance.dashboard"
    _description = "QTC Revenue Assurance Dashboard"

    @api.model
    def qtc_dashboard_data(self):
        """The cards of the dashboard (QTC User).

        :returns: ``{"checks": [...], "slas": [...], "reconciliations": [...]}``,
            each card a dict of display-ready values
        :raises AccessError: the caller is not a QTC user
        """
        check_group(self.env, GROUP_USER, _("read the revenue assurance dashboard"))
        return {
            "checks": [self._qtc_check_card(c) for c in self._qtc_checks()],
            "slas": [self._qtc_sla_card(s) for s in self._qtc_slas()],
            "reconciliations": self._qtc_reconciliation_cards(),
            "company": self.env.company.name,
        }

    @api.model
    def qtc_dashboard_measure(self):
        """Measure every check and service level the caller sees (QTC User).

        :returns: True
        :raises AccessError: the caller is not a QTC user
        """
        checks, slas = self._qtc_checks(), self._qtc_slas()
        if checks:
            checks.action_compute()
        if slas:
            slas.action_compute()
        if not (checks or slas):
            self.qtc_dashboard_data()  # the same access check, nothing to do
        return True

    def _qtc_checks(self):
        return self.env["qtc.assurance.check"].search(
            [("code", "!=", "none"), ("company_id", "in", self.env.companies.ids)]
        )

    def _qtc_slas(self):
        return self.env["qtc.flow.sla"].search(
            [("flow", "!=", "none"), ("company_id", "in", self.env.companies.ids)]
        )

    def _qtc_when(self, moment):
        return format_datetime(self.env, moment, dt_format="short") if moment else ""

    def _qtc_check_card(self, check):
        measures = dict(check._fields["threshold_measure"].selection)
        if check.threshold_measure == assurance.MEASURE_AMOUNT:
            limit = format_amount(self.env, check.threshold, check.currency_id)
        elif check.threshold_measure == assurance.MEASURE_AGE:
            limit = assurance.format_age(check.threshold)
        else:
            limit = f"{check.threshold:g}"
        return {
            "id": check.id,
            "name": check.name,
            "description": check.description or "",
            "summary": _first_sentence(check.description),
            "state": check.state,
            "state_label": dict(check._fields["state"].selection)[check.state],
            "count": check.last_count,
            "amount": check.last_amount,
            "amount_text": format_amount(
                self.env, check.last_amount, check.currency_id
            ),
            "oldest_text": assurance.format_age(check.last_oldest_hours),
            "threshold_text": _(
                "Alert when %(measure)s is above %(limit)s",
                measure=measures[check.threshold_measure].lower(),
                limit=limit,
            ),
            "trend": check.trend_data or [],
            "measured_at": self._qtc_when(check.last_computed_at),
            "company": check.company_id.name,
            "has_records": bool(check.last_count),
        }

    def _qtc_sla_card(self, sla):
        percentiles = dict(sla._fields["percentile"].selection)
        return {
            "id": sla.id,
            "name": sla.name,
            "description": sla.description or "",
            "state": sla.state,
            "state_label": dict(sla._fields["state"].selection)[sla.state],
            "count": sla.last_count,
            "slow_count": sla.last_slow_count,
            "p50_text": assurance.format_duration(sla.last_p50_hours)
            if sla.last_count
            else "-",
            "p90_text": assurance.format_duration(sla.last_p90_hours)
            if sla.last_count
            else "-",
            "target_text": _(
                "Target: %(target)s on the %(percentile)s",
                target=assurance.format_age(sla.target_hours),
                percentile=percentiles[sla.percentile].lower(),
            ),
            "trend": sla.trend_data or [],
            "measured_at": self._qtc_when(sla.last_computed_at),
            "company": sla.company_id.name,
            "has_records": bool(sla.last_slow_count),
        }

    def _qtc_reconciliation_cards(self):
        """The latest finished run of each backend and reconciliation."""
        runs = self.env["qtc.reconciliation.run"].search(
            [
                ("state", "in", ("done", "failed")),
                ("company_id", "in", self.env.companies.ids),
            ],
            order="id desc",
            limit=200,
        )
        latest = {}
        for run in runs:
            latest.setdefault((run.backend_id.id, run.kind), run)
        labels = dict(self.env["qtc.reconciliation.run"]._fields["kind"].selection)
        cards = []
        for run in sorted(latest.values(), key=lambda r: (r.kind, r.backend_id.id)):
            open_count = len(
                run.line_ids.exception_id.filtered(lambda e: e.state == "open")
            )
            window = _(
                "%(start)s to %(end)s",
                start=fields.Date.to_string(run.date_from),
                end=fields.Date.to_string(run.date_to),
            )
            external_name = run.external_name or run.backend_id.name
            cards.append(
                {
                    "id": run.id,
                    "name": labels.get(run.kind, run.kind),
                    "backend": run.backend_id.name,
                    "window": window,
                    "subtitle": f"{run.backend_id.name} · {window}",
                    "external_line": f"{external_name}: {run.external_totals}"
                    if run.state == "done"
                    else "",
                    "odoo_line": _("Odoo: %s", run.odoo_totals)
                    if run.state == "done"
                    else "",
                    "result_line": _(
                        "%(matched)s matched, %(differences)s difference(s)",
                        matched=run.matched_count,
                        differences=run.difference_count,
                    )
                    if run.state == "done"
                    else "",
                    "state": "failed"
                    if run.state == "failed"
                    else ("breach" if open_count else "ok"),
                    "differences": run.difference_count,
                    "open_exceptions": open_count,
                    "matched": run.matched_count,
                    "external_totals": run.external_totals or "",
                    "odoo_totals": run.odoo_totals or "",
                    "external_name": external_name,
                    "error": run.error_message or "",
                    "measured_at": self._qtc_when(run.done_at),
                }
            )
        return cards


def _first_sentence(text):
    """The first sentence of ``text`` (the card's line; the rest is a tooltip)."""
    text = (text or "").strip()
    end = text.find(". ")
    return text[: end + 1] if end > 0 else text
