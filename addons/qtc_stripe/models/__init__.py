from . import account_move, account_move_send, account_payment, qtc_backend
