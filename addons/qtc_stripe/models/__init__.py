from . import (
    account_move,
    account_move_send,
    account_payment,
    qtc_assurance_check,
    qtc_backend,
    qtc_flow_sla,
    qtc_reconciliation_run,
)
