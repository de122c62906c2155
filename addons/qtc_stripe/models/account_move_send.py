from odoo import api, models


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _get_mail_params(self, move, move_data):
        """The invoice's email carries its durable payment link (see
        ``account.move._stripe_pay_link_to_offer``); sending asks Stripe
        nothing, the Checkout Session is made when the customer opens it.

        Hooked here, where both the single and the batch sending build the
        email from the final body, so the link goes only into invoices that
        are really emailed, and a body the user already gave it is kept as is.
        """
        params = super()._get_mail_params(move, move_data)
        if not params:
            return params
        url = move._stripe_pay_link_to_offer()
        if url and url not in str(params.get("body") or ""):
            params["body"] = move._stripe_mail_body_with_link(
                params.get("body"), url, lang=move_data.get("mail_lang")
            )
        return params
