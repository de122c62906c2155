# isort: off
# The mixin first: the models inheriting it are built after it, in import order.
from . import qtc_assurance_mixin

# isort: on
from . import (
    ir_cron,
    ir_http,
    qtc_assurance_check,
    qtc_assurance_dashboard,
    qtc_assurance_snapshot,
    qtc_backend,
    qtc_binding,
    qtc_credential,
    qtc_event,
    qtc_exception,
    qtc_flow_sla,
    qtc_flow_sla_snapshot,
    qtc_job,
    qtc_job_audit,
    qtc_job_channel,
    qtc_job_progress,
    qtc_reconciliation_line,
    qtc_reconciliation_run,
    qtc_trace,
    qtc_trace_mixin,
    qtc_trace_step,
    qtc_value_map,
    qtc_value_map_line,
    res_company,
)
