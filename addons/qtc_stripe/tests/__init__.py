# Odoo tests of this addon are imported here; plain-module tests live in unit/.
from . import (
    test_assurance,
    test_person_errors,
    test_stripe_batch,
    test_stripe_cash_application,
    test_stripe_disputes_payouts,
    test_stripe_invoice_email,
    test_stripe_payment_link,
    test_stripe_replay_security,
    test_stripe_trace,
    test_stripe_webhook,
)
