# Odoo tests of this addon are imported here; plain-module tests live in unit/.
from . import (
    test_address_validation,
    test_assurance,
    test_avatax_flow,
    test_batch_currency,
    test_engine_taxes,
    test_outage,
    test_person_errors,
    test_rate_table,
    test_tax_access,
    test_tax_trace,
)
