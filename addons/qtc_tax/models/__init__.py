# isort: off
# The mixin first: the models inheriting it are built after it, in import order.
from . import qtc_tax_document

# isort: on
from . import (
    account_move,
    account_tax,
    product_template,
    qtc_assurance_check,
    qtc_backend,
    qtc_reconciliation_run,
    qtc_tax_rate,
    qtc_tax_trueup,
    res_partner,
)
