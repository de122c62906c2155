from . import account_move, account_payment, qtc_backend
