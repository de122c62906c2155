"""Plain-Python logic of qtc_tax: no Odoo imports (see tests/unit)."""
