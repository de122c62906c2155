{
    "name": "QTC Tax Engine",
    "summary": "External tax engine (AvaTax or a rate table) for customer invoices: "
    "quote, commit on post, void, refund, outage policy and true-up",
    "version": "18.0.1.0.0",
    "category": "Accounting/Accounting",
    "author": "QTC",
    "license": "LGPL-3",
    "depends": ["qtc_connector_base", "account"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/ir.model.access.csv",
        "security/qtc_tax_security.xml",
        "views/qtc_backend_views.xml",
        "views/qtc_tax_rate_views.xml",
        "views/qtc_tax_trueup_views.xml",
        "views/account_move_views.xml",
        "views/res_partner_views.xml",
        "views/product_template_views.xml",
        "views/qtc_tax_menus.xml",
    ],
    "demo": ["demo/qtc_tax_demo.xml"],
    "installable": True,
}
