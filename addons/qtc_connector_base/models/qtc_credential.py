import functools
import os

from odoo import api, fields, models, tools

from ..lib.secretbox import SecretBox


def secret_box():
    """The ``SecretBox`` for the configured key(s), from the Odoo config option
    ``qtc_encryption_key`` or the ``QTC_ENCRYPTION_KEY`` environment variable.

    :raises KeyConfigError: no key or an invalid key (fails closed)
    """
    keys = tools.config.get("qtc_encryption_key") or os.environ.get(
        "QTC_ENCRYPTION_KEY", ""
    )
    return _box_for(keys)


@functools.lru_cache(maxsize=4)
def _box_for(keys):
    return SecretBox(keys)


class QtcCredential(models.Model):
    """One encrypted secret of a backend (API key, webhook signing secret...).

    Only ciphertext is stored. The table is readable by QTC managers only, and
    even they never see plaintext in the UI: backend secret fields are write-only.
    """

    _name = "qtc.credential"
    _description = "QTC Encrypted Credential"
    _rec_name = "key"

    backend_id = fields.Many2one(
        "qtc.backend", required=True, ondelete="cascade", index=True
    )
    key = fields.Char(required=True, help="Name of the secret, e.g. stripe_api_key")
    ciphertext = fields.Text(required=True)

    _sql_constraints = [
        (
            "backend_key_uniq",
            "unique(backend_id, key)",
            "A backend holds one value per credential name.",
        )
    ]

    @api.model
    def _qtc_rotate_encryption(self):
        """Re-encrypt every credential under the newest configured key.

        Run after putting a new key first in ``qtc_encryption_key`` (old keys
        after it); once it returns, the old keys can be removed.

        :returns: the number of credentials re-encrypted
        :raises UndecryptableSecret: a credential no configured key opens; nothing
            is changed then (the transaction is rolled back by the caller)
        """
        box = secret_box()
        credentials = self.sudo().search([])
        for credential in credentials:
            backend_name = credential.backend_id.display_name
            credential.ciphertext = box.rotate(
                credential.ciphertext,
                label=f"{credential.key} of backend {backend_name}",
            )
        self.env.registry.clear_cache()
        return len(credentials)
