from . import (
    ir_cron,
    qtc_backend,
    qtc_binding,
    qtc_credential,
    qtc_event,
    qtc_exception,
    qtc_job,
    qtc_job_channel,
    qtc_job_progress,
    qtc_trace,
    qtc_value_map,
    qtc_value_map_line,
)
