"""Encryption at rest: round trip, key errors, wrong key, rotation."""

import base64

import pytest
from cryptography.fernet import Fernet

from qtc_connector_base.lib.errors import ConfigError
from qtc_connector_base.lib.secretbox import (
    HOW_TO_SET,
    KeyConfigError,
    SecretBox,
    UndecryptableSecret,
)

PLAINTEXT = "sk_live_51Habc-very-secret-api-key"


@pytest.fixture(scope="module")
def old_key():
    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def new_key():
    return Fernet.generate_key().decode()


def test_round_trip(new_key):
    box = SecretBox(new_key)
    ciphertext = box.encrypt(PLAINTEXT)
    assert isinstance(ciphertext, str)
    assert box.decrypt(ciphertext) == PLAINTEXT


@pytest.mark.parametrize("plaintext", ["", "é ü 漢字 🔑", "x" * 10_000])
def test_round_trip_of_edge_values(new_key, plaintext):
    box = SecretBox(new_key)
    assert box.decrypt(box.encrypt(plaintext)) == plaintext


def test_same_plaintext_encrypts_differently_each_time(new_key):
    box = SecretBox(new_key)
    assert box.encrypt(PLAINTEXT) != box.encrypt(PLAINTEXT)


def test_plaintext_never_appears_in_ciphertext(new_key):
    box = SecretBox(new_key)
    ciphertext = box.encrypt(PLAINTEXT)
    assert PLAINTEXT not in ciphertext
    assert "very-secret" not in ciphertext
    assert new_key not in ciphertext


def test_bytes_key_is_accepted(new_key):
    box_from_bytes = SecretBox([new_key.encode()])
    assert SecretBox(new_key).decrypt(box_from_bytes.encrypt(PLAINTEXT)) == PLAINTEXT


def test_comma_separated_keys_with_spaces(new_key, old_key):
    box = SecretBox(f" {new_key} , {old_key} ,")
    # The first key encrypts: the new-key-only box opens the result...
    assert SecretBox(new_key).decrypt(box.encrypt(PLAINTEXT)) == PLAINTEXT
    # ...and the second key still decrypts.
    assert box.decrypt(SecretBox(old_key).encrypt(PLAINTEXT)) == PLAINTEXT


# -- missing and invalid keys ---------------------------------------------------


@pytest.mark.parametrize("keys", [None, "", "  ", " , ,", [], ["", None], ()])
def test_no_key_raises_with_how_to(keys):
    with pytest.raises(KeyConfigError) as caught:
        SecretBox(keys)
    message = str(caught.value)
    assert message.startswith("No encryption key for QTC credentials")
    assert HOW_TO_SET in message
    assert "qtc_encryption_key" in message
    assert "QTC_ENCRYPTION_KEY" in message
    assert "Fernet.generate_key()" in message


def test_key_errors_are_config_errors():
    assert issubclass(KeyConfigError, ConfigError)
    assert issubclass(UndecryptableSecret, ConfigError)


@pytest.mark.parametrize(
    "bad_key",
    [
        "this-is-not-a-fernet-key",
        "c2hvcnQ=",  # valid base64, only 5 bytes
        base64.urlsafe_b64encode(b"k" * 33).decode(),  # one byte too many
        base64.urlsafe_b64encode(b"k" * 31).decode(),  # one byte short
    ],
)
def test_invalid_first_key_is_named_by_position_without_its_text(bad_key):
    with pytest.raises(KeyConfigError) as caught:
        SecretBox(bad_key)
    message = str(caught.value)
    assert "key #1 is not a valid Fernet key" in message
    assert HOW_TO_SET in message
    assert bad_key not in message
    # Nothing of the underlying library error (which could echo input) leaks.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_invalid_second_key_is_named_by_position(new_key):
    bad_key = "not-a-key-but-a-password-123"
    with pytest.raises(KeyConfigError) as caught:
        SecretBox(f"{new_key},{bad_key}")
    message = str(caught.value)
    assert "key #2 is not a valid Fernet key" in message
    assert bad_key not in message
    assert new_key not in message


def test_non_string_key_is_a_key_config_error():
    with pytest.raises(KeyConfigError, match="key #1"):
        SecretBox([12345])


# -- wrong key ------------------------------------------------------------------


def test_decrypting_with_another_key_raises_undecryptable(new_key, old_key):
    ciphertext = SecretBox(old_key).encrypt(PLAINTEXT)
    with pytest.raises(UndecryptableSecret) as caught:
        SecretBox(new_key).decrypt(ciphertext, label="API key of backend Stripe")
    message = str(caught.value)
    assert message.startswith("The stored API key of backend Stripe cannot")
    assert PLAINTEXT not in message
    assert ciphertext not in message
    assert new_key not in message
    assert old_key not in message
    assert caught.value.__cause__ is None


def test_default_label_is_secret(new_key):
    with pytest.raises(UndecryptableSecret, match=r"^The stored secret cannot"):
        SecretBox(new_key).decrypt("garbage")


@pytest.mark.parametrize("ciphertext", ["", "garbage", "gAAAAA" + "x" * 90, "é"])
def test_malformed_ciphertext_is_undecryptable(new_key, ciphertext):
    with pytest.raises(UndecryptableSecret):
        SecretBox(new_key).decrypt(ciphertext)


def test_tampered_ciphertext_is_undecryptable(new_key):
    box = SecretBox(new_key)
    ciphertext = box.encrypt(PLAINTEXT)
    # Flip one character in the middle (keeps valid base64): the HMAC fails.
    middle = len(ciphertext) // 2
    swapped = "A" if ciphertext[middle] != "A" else "B"
    tampered = ciphertext[:middle] + swapped + ciphertext[middle + 1 :]
    with pytest.raises(UndecryptableSecret):
        box.decrypt(tampered)


# -- rotation -------------------------------------------------------------------


def test_box_with_new_and_old_keys_decrypts_old_ciphertext(new_key, old_key):
    old_ciphertext = SecretBox(old_key).encrypt(PLAINTEXT)
    assert SecretBox([new_key, old_key]).decrypt(old_ciphertext) == PLAINTEXT


def test_box_with_new_and_old_keys_encrypts_with_new(new_key, old_key):
    ciphertext = SecretBox([new_key, old_key]).encrypt(PLAINTEXT)
    assert SecretBox(new_key).decrypt(ciphertext) == PLAINTEXT
    with pytest.raises(UndecryptableSecret):
        SecretBox(old_key).decrypt(ciphertext)


def test_rotate_moves_ciphertext_to_the_new_key(new_key, old_key):
    old_ciphertext = SecretBox(old_key).encrypt(PLAINTEXT)
    rotated = SecretBox([new_key, old_key]).rotate(old_ciphertext)
    assert rotated != old_ciphertext
    assert PLAINTEXT not in rotated
    assert SecretBox(new_key).decrypt(rotated) == PLAINTEXT
    with pytest.raises(UndecryptableSecret):
        SecretBox(old_key).decrypt(rotated)


def test_rotate_of_unreadable_ciphertext_raises(new_key, old_key):
    foreign = SecretBox(Fernet.generate_key().decode()).encrypt(PLAINTEXT)
    with pytest.raises(UndecryptableSecret) as caught:
        SecretBox([new_key, old_key]).rotate(foreign, label="webhook secret")
    message = str(caught.value)
    assert message.startswith("The stored webhook secret cannot be re-encrypted")
    assert PLAINTEXT not in message
    assert foreign not in message
