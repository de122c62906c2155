# Odoo tests of this addon are imported here; plain-module tests live in unit/.
