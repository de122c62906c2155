# Odoo tests of this addon are imported here; plain-module tests live in unit/.
from . import test_stripe_batch, test_stripe_cash_application, test_stripe_webhook
