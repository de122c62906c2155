"""Plain-Python logic of qtc_psa_timesheets: no Odoo imports (see tests/unit)."""
