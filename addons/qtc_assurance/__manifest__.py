{
    "name": "QTC Revenue Assurance for Sales and Invoicing",
    "summary": "Revenue assurance checks on Odoo's own orders and invoices, the "
    "invoice-to-cash service level and the quote-to-cash fact view for BI tools",
    "version": "18.0.1.0.0",
    "category": "Sales/Sales",
    "author": "QTC",
    "license": "LGPL-3",
    "depends": ["qtc_connector_base", "sale_project"],
    "data": [
        "security/ir.model.access.csv",
        "security/qtc_q2c_fact_security.xml",
        "data/qtc_assurance_data.xml",
        "views/qtc_q2c_fact_views.xml",
    ],
    "auto_install": True,
    "installable": True,
}
