from . import test_dashboard, test_fact, test_sale_checks
