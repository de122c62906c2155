# Odoo tests of this addon are imported here; plain-module tests live in unit/.
from . import (
    test_assurance,
    test_connection,
    test_opportunity,
    test_outbound_message,
    test_person_errors,
    test_salesforce_trace,
    test_sync,
    test_writeback,
)
