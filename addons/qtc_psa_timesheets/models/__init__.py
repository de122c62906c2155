from . import (
    account_analytic_line,
    qtc_backend,
    qtc_event,
    qtc_exception,
    qtc_psa_item,
    qtc_psa_unbilled_report,
)
