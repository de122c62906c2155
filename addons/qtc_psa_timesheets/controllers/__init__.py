from . import billing_status, main, reconciliation_totals
