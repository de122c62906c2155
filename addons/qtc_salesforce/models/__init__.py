from . import (
    account_move,
    account_move_line,
    project_project,
    qtc_backend,
    qtc_binding,
    qtc_exception,
    res_partner,
    sale_order,
    sale_order_line,
)
