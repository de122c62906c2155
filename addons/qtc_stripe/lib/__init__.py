"""Plain-Python logic of the Stripe connector: no ORM, importable without Odoo."""
