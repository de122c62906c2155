import secrets


def post_init_hook(env):
    """Give /qtc/health and /qtc/metrics a random token at install; an admin
    reads or changes it in Settings > Technical > System Parameters.

    Give every company its QTC service user, the default technical user of
    its backends (companies created later get theirs when created; see
    ``res_company.py``)."""
    params = env["ir.config_parameter"].sudo()
    if not params.get_param("qtc_connector_base.health_token"):
        params.set_param("qtc_connector_base.health_token", secrets.token_urlsafe(32))
    env["res.company"]._qtc_install_service_users()
