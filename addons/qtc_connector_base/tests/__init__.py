from . import (
    test_assurance_checks,
    test_backend_credentials,
    test_binding_value_map,
    test_exception_queue,
    test_flow_sla,
    test_health,
    test_job_queue,
    test_job_queue_concurrency,
    test_reconciliation,
    test_trace,
    test_webhook,
)
