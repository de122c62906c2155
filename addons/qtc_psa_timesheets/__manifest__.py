{
    "name": "QTC PSA Timesheets",
    "summary": "Approved time, expenses and milestones from a PSA (push API or "
    "Harvest) become timesheets and delivered quantities Odoo invoices natively",
    "version": "18.0.1.2.0",
    "category": "Connector",
    "author": "QTC",
    "license": "LGPL-3",
    "depends": ["qtc_connector_base", "sale_timesheet"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/ir.model.access.csv",
        "security/qtc_service_security.xml",
        "data/qtc_value_map_data.xml",
        "data/ir_cron_data.xml",
        "views/qtc_backend_views.xml",
        "views/qtc_psa_item_views.xml",
        "views/qtc_psa_unbilled_report_views.xml",
        "views/qtc_psa_menus.xml",
    ],
    "demo": ["demo/qtc_psa_demo.xml"],
    "installable": True,
}
