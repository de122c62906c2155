from . import qtc_tax_address_wizard
