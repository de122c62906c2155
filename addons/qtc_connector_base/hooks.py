import secrets


def post_init_hook(env):
    """Give /qtc/health and /qtc/metrics a random token at install; an admin
    reads or changes it in Settings > Technical > System Parameters."""
    params = env["ir.config_parameter"].sudo()
    if not params.get_param("qtc_connector_base.health_token"):
        params.set_param("qtc_connector_base.health_token", secrets.token_urlsafe(32))
