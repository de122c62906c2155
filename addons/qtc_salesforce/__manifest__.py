{
    "name": "QTC Salesforce",
    "summary": "Closed-won Salesforce opportunities become customers, sale orders, "
    "projects and billing milestones; order and invoice status written back",
    "version": "18.0.1.1.0",
    "category": "Connector",
    "author": "QTC",
    "license": "LGPL-3",
    "depends": ["qtc_connector_base", "sale_project"],
    "external_dependencies": {"python": ["cryptography", "requests"]},
    "data": [
        "security/qtc_service_security.xml",
        "data/ir_cron_data.xml",
        "data/qtc_assurance_data.xml",
        "views/qtc_backend_views.xml",
        "views/qtc_exception_views.xml",
    ],
    "demo": ["demo/qtc_salesforce_demo.xml"],
    "installable": True,
}
