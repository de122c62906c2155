from . import (
    account_move,
    account_move_line,
    project_project,
    qtc_assurance_check,
    qtc_backend,
    qtc_binding,
    qtc_exception,
    qtc_flow_sla,
    qtc_reconciliation_run,
    res_partner,
    sale_order,
    sale_order_line,
)
