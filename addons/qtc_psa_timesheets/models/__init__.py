from . import (
    account_analytic_line,
    account_move,
    qtc_assurance_check,
    qtc_backend,
    qtc_flow_sla,
    qtc_psa_item,
    qtc_psa_unbilled_report,
    qtc_reconciliation_run,
    sale_order,
)
