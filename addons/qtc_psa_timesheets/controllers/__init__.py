from . import billing_status, main
