from odoo import Command, _, api, fields, models

SERVICE_GROUP = "qtc_connector_base.group_qtc_service"


class ResCompany(models.Model):
    """Each company gets one QTC service user at install (and when it is
    created later): the default technical user of its backends, running the
    work senders and schedules bring in with the rights of QTC service account
    (which each installed connector extends with exactly what it needs), never
    the superuser's."""

    _inherit = "res.company"

    qtc_service_user_id = fields.Many2one(
        "res.users",
        string="QTC service user",
        readonly=True,
        copy=False,
        ondelete="set null",
        help="Default technical user of this company's QTC backends.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        companies = super().create(vals_list)
        companies._qtc_ensure_service_users()
        return companies

    @api.model
    def _qtc_install_service_users(self):
        """Install and update: every company has its service user, and every
        backend without a technical user gets its company's."""
        companies = self.sudo().with_context(active_test=False).search([])
        companies._qtc_ensure_service_users()
        backends_sudo = self.env["qtc.backend"].sudo().with_context(active_test=False)
        for backend_sudo in backends_sudo.search([("technical_user_id", "=", False)]):
            backend_sudo.technical_user_id = backend_sudo.company_id.qtc_service_user_id

    def _qtc_ensure_service_users(self):
        """Create the service user of each company that has none.

        Boundary (system setup): users are created by the system with the
        company, whoever creates the company (creating users is an
        administrator's right, and this user is the product's own).
        """
        group = self.env.ref(SERVICE_GROUP, raise_if_not_found=False)
        if not group:
            return  # during the base's own install, before its groups exist
        users_sudo = (
            self.env["res.users"]
            .sudo()
            .with_context(no_reset_password=True, mail_create_nosubscribe=True)
        )
        for company_sudo in self.sudo():
            existing = company_sudo.qtc_service_user_id
            if existing:
                if not existing.email:
                    existing.email = company_sudo._qtc_service_email()
                continue
            login = f"qtc-service-{company_sudo.id}"
            user_sudo = users_sudo.with_context(active_test=False).search(
                [("login", "=", login)], limit=1
            ) or users_sudo.create(
                {
                    "name": _("QTC service (%s)", company_sudo.name),
                    "login": login,
                    "company_id": company_sudo.id,
                    "company_ids": [Command.set(company_sudo.ids)],
                    "groups_id": [Command.set(group.ids)],
                    "notification_type": "inbox",
                    "email": company_sudo._qtc_service_email(),
                }
            )
            company_sudo.qtc_service_user_id = user_sudo

    def _qtc_service_email(self):
        """The service user's address: its chatter notes (on invoices, orders)
        need an author address; the company's, else a local one that reaches
        no one."""
        self.ensure_one()
        return self.email or f"qtc-service-{self.id}@localhost"
