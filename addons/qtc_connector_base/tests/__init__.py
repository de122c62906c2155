from . import (
    test_backend_credentials,
    test_binding_value_map,
    test_exception_queue,
    test_health,
    test_job_queue,
    test_job_queue_concurrency,
    test_job_security,
    test_queue_attacks,
    test_replay_security,
    test_trace,
    test_webhook,
)
