"""Encryption at rest for connector credentials.

Credentials are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from the
``cryptography`` package). The key comes from the Odoo config option
``qtc_encryption_key`` or the ``QTC_ENCRYPTION_KEY`` environment variable, never
from the database: a database dump alone does not reveal a secret.

Rotation without data loss: the option may hold several comma-separated keys, the
first one encrypts, all of them decrypt. Put the new key first, keep the old one
after it, re-encrypt every stored credential (``SecretBox.rotate``), then remove
the old key.

Failures are closed and clear: no key, a malformed key, or a ciphertext that no
configured key opens raise ``KeyConfigError`` / ``UndecryptableSecret``; nothing
ever falls back to storing or returning plaintext.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import ConfigError

HOW_TO_SET = (
    "set the Odoo config option qtc_encryption_key or the environment variable "
    'QTC_ENCRYPTION_KEY to a Fernet key (python3 -c "from cryptography.fernet '
    'import Fernet; print(Fernet.generate_key().decode())")'
)


class KeyConfigError(ConfigError):
    """No usable encryption key is configured."""


class UndecryptableSecret(ConfigError):
    """A stored secret cannot be opened with the configured keys."""


class SecretBox:
    """Encrypt and decrypt text with the configured keys.

    :param keys: a comma-separated string or a list of Fernet keys, newest first
    :raises KeyConfigError: no key, or a key that is not a valid Fernet key
    """

    def __init__(self, keys):
        if isinstance(keys, str):
            keys = [key.strip() for key in keys.split(",")]
        keys = [key for key in (keys or []) if key]
        if not keys:
            raise KeyConfigError(f"No encryption key for QTC credentials: {HOW_TO_SET}")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # The key itself is never echoed back, only its position.
                raise KeyConfigError(
                    f"QTC encryption key #{position} is not a valid Fernet key "
                    f"(32 url-safe base64-encoded bytes): {HOW_TO_SET}"
                ) from None
        self._box = MultiFernet(fernets)

    def encrypt(self, plaintext):
        """Ciphertext (str) of ``plaintext`` (str) under the newest key."""
        return self._box.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext, label="secret"):
        """Plaintext of ``ciphertext``.

        :param label: names the secret in the error, e.g. "API key of backend X"
        :raises UndecryptableSecret: no configured key opens it
        """
        try:
            return self._box.decrypt(ciphertext.encode()).decode()
        except (InvalidToken, ValueError, TypeError):
            raise UndecryptableSecret(
                f"The stored {label} cannot be decrypted with the configured "
                "encryption key(s): restore the key it was encrypted with (listed "
                "after the new key) or enter the secret again."
            ) from None

    def rotate(self, ciphertext, label="secret"):
        """Re-encrypt ``ciphertext`` under the newest key."""
        try:
            return self._box.rotate(ciphertext.encode()).decode()
        except (InvalidToken, ValueError, TypeError):
            raise UndecryptableSecret(
                f"The stored {label} cannot be re-encrypted: "
                "no configured key opens it."
            ) from None
