# Odoo tests of this addon are imported here; plain-module tests live in unit/.
from . import (
    test_apply,
    test_assurance,
    test_batch,
    test_billing_status,
    test_billing_writeback,
    test_harvest,
    test_psa_access,
    test_psa_trace,
    test_push_api,
    test_reconciliation_totals,
)
