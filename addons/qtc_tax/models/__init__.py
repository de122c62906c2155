from . import (
    account_move,
    account_tax,
    product_template,
    qtc_backend,
    qtc_tax_rate,
    qtc_tax_trueup,
    res_partner,
)
