"""Plain-Python logic of the connector base: no ORM, importable without Odoo."""
