{
    "name": "QTC Stripe",
    "summary": "Stripe events applied as payments reconciled to invoices: refunds, "
    "disputes, fees, payouts; Stripe payment links for posted invoices",
    "version": "18.0.1.4.0",
    "category": "Accounting/Payment",
    "author": "QTC",
    "license": "LGPL-3",
    "depends": ["qtc_connector_base", "account"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/qtc_service_security.xml",
        "data/ir_cron_data.xml",
        "data/qtc_assurance_data.xml",
        "data/qtc_job_channel_data.xml",
        "views/qtc_backend_views.xml",
        "views/account_move_views.xml",
        "views/stripe_pay_templates.xml",
        "views/account_portal_templates.xml",
    ],
    "demo": ["demo/qtc_backend_demo.xml"],
    "installable": True,
}
