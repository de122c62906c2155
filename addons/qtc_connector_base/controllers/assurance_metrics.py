"""Revenue assurance gauges for ``GET /qtc/metrics`` (Prometheus text format).

The metrics route appends ``assurance_metric_lines(env)`` to its technical
figures. Every value is read from what the last measurement stored (checks,
service levels, reconciliation runs): a scrape never measures anything, so it
costs a few indexed reads whatever the size of the database.

Gauges (labels ``company`` = company id):

- ``qtc_assurance_items{check,company}``: records the check counts;
- ``qtc_assurance_amount{check,company,currency}``: their amount, company
  currency;
- ``qtc_assurance_oldest_item_seconds{check,company}``: age of the oldest;
- ``qtc_assurance_threshold{check,company,measure}``: the threshold and what
  it applies to (``count``, ``amount``, ``age`` in hours);
- ``qtc_assurance_breached{check,company}``: 1 over threshold, else 0;
- ``qtc_flow_lead_time_p50_seconds{flow,company,backend}`` and
  ``qtc_flow_lead_time_p90_seconds{...}``: this week's median and 90th
  percentile per backend (``backend="0"``: the flow has no backend), and
  ``backend="all"`` over all backends;
- ``qtc_flow_completed{flow,company,backend}``: samples this week;
- ``qtc_flow_target_seconds{flow,company}`` and
  ``qtc_flow_breached{flow,company}``;
- ``qtc_reconciliation_differences{kind,backend}``: differences of the latest
  finished run; ``qtc_reconciliation_open_exceptions{kind,backend}``;
- ``qtc_reconciliation_last_run_timestamp_seconds{kind,backend}``.
"""

from datetime import UTC

from ..lib import assurance

GAUGES = (
    ("qtc_assurance_items", "Records a revenue assurance check counts"),
    ("qtc_assurance_amount", "Amount of those records, in company currency"),
    ("qtc_assurance_oldest_item_seconds", "Age of the oldest counted record"),
    ("qtc_assurance_threshold", "Threshold of the check (see the measure label)"),
    ("qtc_assurance_breached", "1 when the check is over its threshold"),
    ("qtc_flow_lead_time_p50_seconds", "Median lead time of the flow this week"),
    ("qtc_flow_lead_time_p90_seconds", "90th percentile lead time this week"),
    ("qtc_flow_completed", "Records that completed the flow this week"),
    ("qtc_flow_target_seconds", "Target lead time of the flow"),
    ("qtc_flow_breached", "1 when the flow is slower than its target"),
    ("qtc_reconciliation_differences", "Differences of the latest run"),
    ("qtc_reconciliation_open_exceptions", "Open exceptions of the latest run"),
    ("qtc_reconciliation_last_run_timestamp_seconds", "End of the latest run"),
)


def _label(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _labels(**values):
    return ",".join(f'{name}="{_label(value)}"' for name, value in values.items())


def assurance_metric_lines(env):
    """The gauges, as Prometheus text lines (``# HELP``/``# TYPE`` included).

    :param env: an environment allowed to read every company's figures (the
        metrics route authenticates with its bearer token, not as a user)
    """
    samples = {name: [] for name, _help in GAUGES}
    _check_samples(env, samples)
    _sla_samples(env, samples)
    _reconciliation_samples(env, samples)
    lines = []
    for name, help_text in GAUGES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{{{labels}}} {value}" for labels, value in samples[name])
    return lines


def _number(value):
    return f"{float(value or 0):.6g}" if isinstance(value, float) else str(value or 0)


def _check_samples(env, samples):
    checks = env["qtc.assurance.check"].search(
        [("code", "!=", "none"), ("state", "!=", "new")]
    )
    for check in checks:
        labels = _labels(check=check.code, company=check.company_id.id)
        samples["qtc_assurance_items"].append((labels, check.last_count))
        samples["qtc_assurance_amount"].append(
            (
                _labels(
                    check=check.code,
                    company=check.company_id.id,
                    currency=check.currency_id.name,
                ),
                _number(check.last_amount),
            )
        )
        samples["qtc_assurance_oldest_item_seconds"].append(
            (labels, round(check.last_oldest_hours * 3600))
        )
        samples["qtc_assurance_threshold"].append(
            (
                _labels(
                    check=check.code,
                    company=check.company_id.id,
                    measure=check.threshold_measure,
                ),
                _number(check.threshold),
            )
        )
        samples["qtc_assurance_breached"].append((labels, int(check.state == "breach")))


def _sla_samples(env, samples):
    slas = env["qtc.flow.sla"].search([("flow", "!=", "none"), ("state", "!=", "new")])
    if not slas:
        return
    weeks = {sla.id: assurance.week_start(sla.last_computed_at) for sla in slas}
    rows = env["qtc.flow.sla.snapshot"].search(
        [("sla_id", "in", slas.ids), ("week", "in", list(set(weeks.values())))]
    )
    for sla in slas:
        company = sla.company_id.id
        base = _labels(flow=sla.flow, company=company)
        samples["qtc_flow_target_seconds"].append(
            (base, round(sla.target_hours * 3600))
        )
        samples["qtc_flow_breached"].append((base, int(sla.state == "breach")))
        per_backend = [
            (str(row.backend_id.id or 0), row.p50_hours, row.p90_hours, row.count)
            for row in rows
            if row.sla_id == sla and row.week == weeks[sla.id]
        ]
        per_backend.append(
            ("all", sla.last_p50_hours, sla.last_p90_hours, sla.last_count)
        )
        for backend, p50, p90, count in per_backend:
            labels = _labels(flow=sla.flow, company=company, backend=backend)
            samples["qtc_flow_lead_time_p50_seconds"].append(
                (labels, round((p50 or 0) * 3600))
            )
            samples["qtc_flow_lead_time_p90_seconds"].append(
                (labels, round((p90 or 0) * 3600))
            )
            samples["qtc_flow_completed"].append((labels, count))


def _reconciliation_samples(env, samples):
    runs = env["qtc.reconciliation.run"].search(
        [("state", "in", ("done", "failed"))], order="id desc", limit=500
    )
    latest = {}
    for run in runs:
        latest.setdefault((run.kind, run.backend_id.id), run)
    for (kind, backend_id), run in sorted(latest.items()):
        labels = _labels(kind=kind, backend=backend_id)
        open_exceptions = len(
            run.line_ids.exception_id.filtered(lambda e: e.state == "open")
        )
        samples["qtc_reconciliation_differences"].append((labels, run.difference_count))
        samples["qtc_reconciliation_open_exceptions"].append((labels, open_exceptions))
        if run.done_at:
            stamp = run.done_at.replace(tzinfo=UTC).timestamp()
            samples["qtc_reconciliation_last_run_timestamp_seconds"].append(
                (labels, f"{stamp:.0f}")
            )
