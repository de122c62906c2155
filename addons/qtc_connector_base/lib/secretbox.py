"""Encryption at rest for connector credentials, each bound to its place.

A credential is encrypted with AES-256-GCM (authenticated encryption, from the
``cryptography`` package) under a key derived from the configured key. The
associated data names where the secret lives: the format version, the backend
id and the credential name. A ciphertext copied into another backend's row,
or under another credential name of the same backend, therefore fails to
decrypt: a person who can write the credential table cannot make Odoo open a
secret somewhere it was not stored (and send it to a host of their choosing).

Stored form: ``qtc2:<key id>:<base64url(nonce || ciphertext || tag)>``. The key
id (a fingerprint derived from the key, which reveals nothing of it) says which
configured key opens the value, so a missing key and a misplaced ciphertext
give different, clear errors.

The key comes from the Odoo config option ``qtc_encryption_key`` or the
``QTC_ENCRYPTION_KEY`` environment variable, never from the database: a
database dump alone does not reveal a secret. Keys are 32 random bytes in
url-safe base64 (the form ``Fernet.generate_key()`` prints).

Rotation without data loss: the option may hold several comma-separated keys,
the first one encrypts, all of them decrypt. Put the new key first, keep the
old one after it, re-encrypt every stored credential (``SecretBox.rotate``),
then remove the old key.

Credentials stored before this format (Fernet tokens, bound to nothing) are
opened only by ``SecretBox.open_unbound``, which the module's upgrade uses once
to re-encrypt them; ``decrypt`` refuses them.

Failures are closed and clear: no key, a malformed key, a ciphertext that no
configured key opens or that belongs elsewhere raise ``KeyConfigError`` /
``UndecryptableSecret``; nothing ever falls back to storing or returning
plaintext.
"""

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigError

HOW_TO_SET = (
    "set the Odoo config option qtc_encryption_key or the environment variable "
    'QTC_ENCRYPTION_KEY to a Fernet key (python3 -c "from cryptography.fernet '
    'import Fernet; print(Fernet.generate_key().decode())")'
)
FORMAT = "qtc2"
NONCE_BYTES = 12
KEY_BYTES = 32
# Unbound ciphertexts of the first format: Fernet tokens (version byte 0x80).
UNBOUND_PREFIX = "gAAAAA"


class KeyConfigError(ConfigError):
    """No usable encryption key is configured."""


class UndecryptableSecret(ConfigError):
    """A stored secret cannot be opened with the configured keys."""


class MisplacedSecret(UndecryptableSecret):
    """A stored secret was encrypted for another backend or credential name
    (copied there), or was altered."""


def _derive(raw_key, purpose):
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=f"qtc credential {purpose}".encode(),
    ).derive(raw_key)


def associated_data(backend_id, name):
    """What a ciphertext is bound to: format, backend id and credential name.

    :raises ValueError: not a saved backend id or an empty name (a bug)
    """
    if not isinstance(backend_id, int) or isinstance(backend_id, bool):
        raise ValueError("a credential is bound to a backend id (int)")
    if backend_id <= 0 or not name or not isinstance(name, str):
        raise ValueError("a credential is bound to a saved backend and a name")
    return f"{FORMAT}\x00backend={backend_id}\x00key={name}".encode()


class SecretBox:
    """Encrypt and decrypt credentials with the configured keys.

    :param keys: a comma-separated string or a list of keys, newest first
    :raises KeyConfigError: no key, or a key that is not 32 url-safe
        base64-encoded bytes
    """

    def __init__(self, keys):
        if isinstance(keys, str):
            keys = [key.strip() for key in keys.split(",")]
        keys = [key for key in (keys or []) if key]
        if not keys:
            raise KeyConfigError(f"No encryption key for QTC credentials: {HOW_TO_SET}")
        self._ciphers = {}  # key id -> AESGCM, newest first (dicts keep order)
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernet = Fernet(key)
                raw = base64.urlsafe_b64decode(key)
            except (ValueError, TypeError, binascii.Error):
                # The key itself is never echoed back, only its position.
                raise KeyConfigError(
                    f"QTC encryption key #{position} is not a valid Fernet key "
                    f"(32 url-safe base64-encoded bytes): {HOW_TO_SET}"
                ) from None
            key_id = _derive(raw, "key id")[:6].hex()
            self._ciphers.setdefault(key_id, AESGCM(_derive(raw, "encryption v2")))
            fernets.append(fernet)
        self._newest_id = next(iter(self._ciphers))
        self._unbound = MultiFernet(fernets)

    @property
    def key_ids(self):
        """Fingerprints of the configured keys, newest first."""
        return tuple(self._ciphers)

    def encrypt(self, plaintext, backend_id, name):
        """Ciphertext (str) of ``plaintext`` (str) under the newest key, bound
        to the credential ``name`` of backend ``backend_id``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._newest_id].encrypt(
            nonce, plaintext.encode(), associated_data(backend_id, name)
        )
        token = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{FORMAT}:{self._newest_id}:{token}"

    def decrypt(self, ciphertext, backend_id, name, label=None):
        """Plaintext of the credential ``name`` of backend ``backend_id``.

        :param label: names the secret in errors, e.g. "API key of backend X"
        :raises MisplacedSecret: it was encrypted for another place, or altered
        :raises UndecryptableSecret: no configured key opens it, it is in the
            unbound format of older versions, or it is not a ciphertext
        """
        label = label or f"{name} of backend {backend_id}"
        data = associated_data(backend_id, name)
        key_id, sealed = self._split(ciphertext, label)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UndecryptableSecret(
                f"The stored {label} was encrypted with a key that is not "
                f"configured (key id {key_id}): put that key back in "
                "qtc_encryption_key, after the current one, or enter the "
                "secret again."
            )
        try:
            return cipher.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], data
            ).decode()
        except (InvalidTag, ValueError):
            raise MisplacedSecret(
                f"The stored {label} was not encrypted for this backend and "
                "credential name: it was copied from another credential or "
                "altered, and is refused. Enter the secret again on the "
                "backend form."
            ) from None

    def rotate(self, ciphertext, backend_id, name, label=None):
        """Re-encrypt a credential under the newest key (same binding)."""
        plaintext = self.decrypt(ciphertext, backend_id, name, label)
        return self.encrypt(plaintext, backend_id, name)

    def rebind(self, ciphertext, backend_id, name, new_name, label=None):
        """Move a credential of a backend to another name (the current webhook
        secret becoming the previous one): decrypted where it is, encrypted
        for where it goes."""
        plaintext = self.decrypt(ciphertext, backend_id, name, label)
        return self.encrypt(plaintext, backend_id, new_name)

    @staticmethod
    def is_unbound(ciphertext):
        """True for a ciphertext of the older, unbound format."""
        return isinstance(ciphertext, str) and ciphertext.startswith(UNBOUND_PREFIX)

    def open_unbound(self, ciphertext, label="secret"):
        """Plaintext of an unbound (older format) ciphertext.

        Only for the upgrade that re-encrypts them into the bound format;
        ``decrypt`` never accepts them.

        :raises UndecryptableSecret: no configured key opens it
        """
        try:
            return self._unbound.decrypt(ciphertext.encode()).decode()
        except (InvalidToken, ValueError, TypeError, AttributeError):
            raise UndecryptableSecret(
                f"The stored {label} cannot be decrypted with the configured "
                "encryption key(s): restore the key it was encrypted with (listed "
                "after the new key) or enter the secret again."
            ) from None

    def _split(self, ciphertext, label):
        if self.is_unbound(ciphertext):
            raise UndecryptableSecret(
                f"The stored {label} is in the unbound format of older versions: "
                "update the module qtc_connector_base (odoo -u "
                "qtc_connector_base) so that it is re-encrypted, or enter the "
                "secret again."
            )
        parts = ciphertext.split(":") if isinstance(ciphertext, str) else []
        try:
            if len(parts) != 3 or parts[0] != FORMAT:
                raise ValueError
            sealed = base64.urlsafe_b64decode(parts[2].encode())
            if len(sealed) <= NONCE_BYTES:
                raise ValueError
        except (ValueError, binascii.Error):
            raise UndecryptableSecret(
                f"The stored {label} is not a QTC ciphertext: enter the secret again."
            ) from None
        return parts[1], sealed
