import functools
import logging
import os

from odoo import api, fields, models, tools

from ..lib.secretbox import SecretBox, UndecryptableSecret

_logger = logging.getLogger(__name__)


def server_option(name):
    """A QTC server setting: the Odoo configuration file option ``name``, else
    the environment variable of the same name in upper case. Never stored in
    the database, never editable from the user interface."""
    return tools.config.get(name) or os.environ.get(name.upper(), "")


def secret_box():
    """The ``SecretBox`` for the configured key(s), from the Odoo config option
    ``qtc_encryption_key`` or the ``QTC_ENCRYPTION_KEY`` environment variable.

    :raises KeyConfigError: no key or an invalid key (fails closed)
    """
    return _box_for(server_option("qtc_encryption_key"))


@functools.lru_cache(maxsize=4)
def _box_for(keys):
    return SecretBox(keys)


class QtcCredential(models.Model):
    """One encrypted secret of a backend (API key, webhook signing secret...).

    Only ciphertext is stored, bound to its backend and credential name (see
    ``lib/secretbox.py``): a ciphertext copied to another row or name does not
    decrypt. The table is readable by QTC managers only, and even they never
    see plaintext in the UI: backend secret fields are write-only.
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

    def _qtc_label(self):
        self.ensure_one()
        return f"{self.key} of backend {self.backend_id.display_name}"

    @api.model
    def _qtc_rotate_encryption(self):
        """Re-encrypt every credential under the newest configured key.

        Run after putting a new key first in ``qtc_encryption_key`` (old keys
        after it); once it returns, the old keys can be removed. Each
        credential keeps its binding to its backend and name.

        :returns: the number of credentials re-encrypted
        :raises UndecryptableSecret: a credential no configured key opens, or
            one that was copied from elsewhere; nothing is changed then (the
            transaction is rolled back by the caller)
        """
        box = secret_box()
        credentials = self.sudo().search([])
        for credential in credentials:
            credential.ciphertext = box.rotate(
                credential.ciphertext,
                credential.backend_id.id,
                credential.key,
                label=credential._qtc_label(),
            )
        self.env.registry.clear_cache()
        return len(credentials)

    @api.model
    def _qtc_bind_unbound(self):
        """Re-encrypt credentials stored in the unbound format of older
        versions into the bound format (the module's upgrade runs it once).

        A credential no configured key opens is left as it is and reported:
        it was unreadable before too, and reading it now says to enter it
        again.

        :returns: ``(re-encrypted count, labels of the credentials left)``
        :raises KeyConfigError: unbound credentials exist and no key is
            configured (the upgrade stops: set the key and run it again)
        """
        credentials = self.sudo().with_context(active_test=False).search([])
        unbound = credentials.filtered(lambda c: SecretBox.is_unbound(c.ciphertext))
        if not unbound:
            return 0, []
        box = secret_box()
        left = []
        for credential in unbound:
            label = credential._qtc_label()
            try:
                plaintext = box.open_unbound(credential.ciphertext, label=label)
            except UndecryptableSecret:
                left.append(label)
                continue
            credential.ciphertext = box.encrypt(
                plaintext, credential.backend_id.id, credential.key
            )
        if left:
            _logger.warning(
                "%s credential(s) could not be re-encrypted (no configured key "
                "opens them); enter them again on their backend: %s",
                len(left),
                ", ".join(left),
            )
        self.env.registry.clear_cache()
        return len(unbound) - len(left), left
