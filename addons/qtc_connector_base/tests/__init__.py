from . import (
    test_backend_credentials,
    test_binding_value_map,
    test_exception_queue,
    test_health,
    test_inbound_edges,
    test_job_queue,
    test_job_queue_concurrency,
    test_outbound_policy,
    test_trace,
    test_webhook,
)
