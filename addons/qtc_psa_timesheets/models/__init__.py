from . import (
    account_analytic_line,
    account_move,
    qtc_backend,
    qtc_psa_item,
    qtc_psa_unbilled_report,
    sale_order,
)
