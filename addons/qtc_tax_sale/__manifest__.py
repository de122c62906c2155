{
    "name": "QTC Tax Engine for Sales",
    "summary": "Quote sale orders with the external tax engine of QTC Tax Engine",
    "version": "18.0.1.0.0",
    "category": "Sales/Sales",
    "author": "QTC",
    "license": "LGPL-3",
    "depends": ["qtc_tax", "sale"],
    "data": [
        "security/qtc_service_security.xml",
        "views/sale_order_views.xml",
    ],
    "auto_install": True,
    "installable": True,
}
