from . import (
    test_access,
    test_backend_credentials,
    test_binding_value_map,
    test_exception_queue,
    test_health,
    test_job_queue,
    test_job_queue_concurrency,
    test_person_errors,
    test_role_matrix,
    test_tours,
    test_trace,
    test_webhook,
)
