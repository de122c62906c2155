from . import qtc_exception_ignore, qtc_exception_replay, qtc_reconciliation_wizard
