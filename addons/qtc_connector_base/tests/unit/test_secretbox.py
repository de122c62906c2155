"""Encryption at rest: round trip, binding to backend and name, key errors,
wrong key, rotation, and the unbound format of older versions."""

import base64

import pytest
from cryptography.fernet import Fernet

from qtc_connector_base.lib.errors import ConfigError
from qtc_connector_base.lib.secretbox import (
    HOW_TO_SET,
    KeyConfigError,
    MisplacedSecret,
    SecretBox,
    UndecryptableSecret,
    associated_data,
)

PLAINTEXT = "sk_live_51Habc-very-secret-api-key"
BACKEND = 7
NAME = "stripe_api_key"


@pytest.fixture(scope="module")
def old_key():
    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def new_key():
    return Fernet.generate_key().decode()


def seal(box, plaintext=PLAINTEXT, backend=BACKEND, name=NAME):
    return box.encrypt(plaintext, backend, name)


def test_round_trip(new_key):
    box = SecretBox(new_key)
    ciphertext = seal(box)
    assert isinstance(ciphertext, str)
    assert ciphertext.startswith("qtc2:")
    assert box.decrypt(ciphertext, BACKEND, NAME) == PLAINTEXT


@pytest.mark.parametrize("plaintext", ["", "é ü 漢字 🔑", "x" * 10_000])
def test_round_trip_of_edge_values(new_key, plaintext):
    box = SecretBox(new_key)
    assert box.decrypt(seal(box, plaintext), BACKEND, NAME) == plaintext


def test_same_plaintext_encrypts_differently_each_time(new_key):
    box = SecretBox(new_key)
    assert seal(box) != seal(box)


def test_plaintext_never_appears_in_ciphertext(new_key):
    box = SecretBox(new_key)
    ciphertext = seal(box)
    assert PLAINTEXT not in ciphertext
    assert "very-secret" not in ciphertext
    assert new_key not in ciphertext


def test_bytes_key_is_accepted(new_key):
    box_from_bytes = SecretBox([new_key.encode()])
    assert SecretBox(new_key).decrypt(seal(box_from_bytes), BACKEND, NAME) == PLAINTEXT


def test_comma_separated_keys_with_spaces(new_key, old_key):
    box = SecretBox(f" {new_key} , {old_key} ,")
    # The first key encrypts: the new-key-only box opens the result...
    assert SecretBox(new_key).decrypt(seal(box), BACKEND, NAME) == PLAINTEXT
    # ...and the second key still decrypts.
    assert box.decrypt(seal(SecretBox(old_key)), BACKEND, NAME) == PLAINTEXT


# -- bound to its backend and name ---------------------------------------------


@pytest.mark.parametrize(
    ("backend", "name"),
    [
        (BACKEND + 1, NAME),  # copied into another backend's row
        (BACKEND, "salesforce_client_secret"),  # under another name
        (BACKEND + 1, "salesforce_client_secret"),
    ],
)
def test_ciphertext_copied_elsewhere_is_refused(new_key, backend, name):
    box = SecretBox(new_key)
    ciphertext = seal(box)
    with pytest.raises(MisplacedSecret) as caught:
        box.decrypt(ciphertext, backend, name, label=f"{name} of backend B")
    message = str(caught.value)
    assert message.startswith(f"The stored {name} of backend B was not encrypted")
    assert "copied from another credential" in message
    assert "Enter the secret again" in message
    assert PLAINTEXT not in message
    assert ciphertext not in message
    assert caught.value.__cause__ is None


def test_misplaced_secret_is_an_undecryptable_config_error():
    assert issubclass(MisplacedSecret, UndecryptableSecret)
    assert issubclass(MisplacedSecret, ConfigError)


def test_associated_data_names_format_backend_and_key():
    assert associated_data(7, "api_key") == b"qtc2\x00backend=7\x00key=api_key"
    # Fields are delimited: (1, "2x") and (12, "x") never share associated data.
    assert associated_data(1, "2x") != associated_data(12, "x")


@pytest.mark.parametrize(
    ("backend", "name"), [(0, NAME), (None, NAME), ("7", NAME), (True, NAME), (7, "")]
)
def test_binding_must_be_a_saved_backend_and_a_name(new_key, backend, name):
    with pytest.raises(ValueError, match="bound to"):
        SecretBox(new_key).encrypt(PLAINTEXT, backend, name)


def test_rebind_moves_a_secret_to_another_name(new_key):
    box = SecretBox(new_key)
    current = box.encrypt(PLAINTEXT, BACKEND, "webhook_secret")
    previous = box.rebind(current, BACKEND, "webhook_secret", "webhook_secret_previous")
    assert box.decrypt(previous, BACKEND, "webhook_secret_previous") == PLAINTEXT
    with pytest.raises(MisplacedSecret):
        box.decrypt(previous, BACKEND, "webhook_secret")


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


def test_decrypting_with_another_key_names_the_missing_key(new_key, old_key):
    ciphertext = seal(SecretBox(old_key))
    old_id = SecretBox(old_key).key_ids[0]
    with pytest.raises(UndecryptableSecret) as caught:
        SecretBox(new_key).decrypt(
            ciphertext, BACKEND, NAME, label="API key of backend Stripe"
        )
    assert not isinstance(caught.value, MisplacedSecret)
    message = str(caught.value)
    assert message.startswith("The stored API key of backend Stripe was encrypted")
    assert f"key id {old_id}" in message
    assert "put that key back in qtc_encryption_key" in message
    for text in (PLAINTEXT, ciphertext, new_key, old_key):
        assert text not in message
    assert caught.value.__cause__ is None


def test_key_id_reveals_nothing_of_the_key(new_key):
    key_id = SecretBox(new_key).key_ids[0]
    assert len(key_id) == 12
    assert key_id not in new_key
    assert key_id not in base64.urlsafe_b64decode(new_key).hex()


def test_default_label_names_backend_and_key(new_key):
    with pytest.raises(
        UndecryptableSecret, match=rf"^The stored {NAME} of backend {BACKEND} is not"
    ):
        SecretBox(new_key).decrypt("garbage", BACKEND, NAME)


@pytest.mark.parametrize(
    "ciphertext",
    ["", "garbage", "qtc2:abc", "qtc2:abc:!!!", "qtc2:abc:AAAA", "qtc3:a:AAAA", "é"],
)
def test_malformed_ciphertext_is_undecryptable(new_key, ciphertext):
    with pytest.raises(UndecryptableSecret):
        SecretBox(new_key).decrypt(ciphertext, BACKEND, NAME)


def test_tampered_ciphertext_is_refused(new_key):
    box = SecretBox(new_key)
    ciphertext = seal(box)
    # Flip one character of the token (keeps valid base64): the tag fails.
    middle = len(ciphertext) - 10
    swapped = "A" if ciphertext[middle] != "A" else "B"
    tampered = ciphertext[:middle] + swapped + ciphertext[middle + 1 :]
    with pytest.raises(MisplacedSecret):
        box.decrypt(tampered, BACKEND, NAME)


# -- rotation -------------------------------------------------------------------


def test_box_with_new_and_old_keys_decrypts_old_ciphertext(new_key, old_key):
    old_ciphertext = seal(SecretBox(old_key))
    assert SecretBox([new_key, old_key]).decrypt(old_ciphertext, BACKEND, NAME) == (
        PLAINTEXT
    )


def test_box_with_new_and_old_keys_encrypts_with_new(new_key, old_key):
    ciphertext = seal(SecretBox([new_key, old_key]))
    assert SecretBox(new_key).decrypt(ciphertext, BACKEND, NAME) == PLAINTEXT
    with pytest.raises(UndecryptableSecret):
        SecretBox(old_key).decrypt(ciphertext, BACKEND, NAME)


def test_rotate_moves_ciphertext_to_the_new_key_and_keeps_the_binding(new_key, old_key):
    old_ciphertext = seal(SecretBox(old_key))
    rotated = SecretBox([new_key, old_key]).rotate(old_ciphertext, BACKEND, NAME)
    assert rotated != old_ciphertext
    assert PLAINTEXT not in rotated
    assert SecretBox(new_key).decrypt(rotated, BACKEND, NAME) == PLAINTEXT
    with pytest.raises(UndecryptableSecret):
        SecretBox(old_key).decrypt(rotated, BACKEND, NAME)
    with pytest.raises(MisplacedSecret):
        SecretBox(new_key).decrypt(rotated, BACKEND + 1, NAME)


def test_rotate_of_unreadable_ciphertext_raises(new_key, old_key):
    foreign = seal(SecretBox(Fernet.generate_key().decode()))
    with pytest.raises(UndecryptableSecret) as caught:
        SecretBox([new_key, old_key]).rotate(
            foreign, BACKEND, NAME, label="webhook secret"
        )
    message = str(caught.value)
    assert message.startswith("The stored webhook secret was encrypted with a key")
    assert PLAINTEXT not in message
    assert foreign not in message


# -- the unbound format of older versions ---------------------------------------


def test_unbound_ciphertext_is_refused_by_decrypt(new_key):
    unbound = Fernet(new_key).encrypt(PLAINTEXT.encode()).decode()
    box = SecretBox(new_key)
    assert box.is_unbound(unbound)
    assert not box.is_unbound(seal(box))
    with pytest.raises(UndecryptableSecret) as caught:
        box.decrypt(unbound, BACKEND, NAME)
    assert "update the module qtc_connector_base" in str(caught.value)


def test_unbound_ciphertext_opens_for_the_upgrade_with_any_configured_key(
    new_key, old_key
):
    unbound = Fernet(old_key).encrypt(PLAINTEXT.encode()).decode()
    box = SecretBox([new_key, old_key])
    assert box.open_unbound(unbound) == PLAINTEXT
    rebound = box.encrypt(box.open_unbound(unbound), BACKEND, NAME)
    assert SecretBox(new_key).decrypt(rebound, BACKEND, NAME) == PLAINTEXT


def test_unbound_ciphertext_no_key_opens_is_undecryptable(new_key):
    unbound = Fernet(Fernet.generate_key()).encrypt(PLAINTEXT.encode()).decode()
    with pytest.raises(UndecryptableSecret, match="restore the key"):
        SecretBox(new_key).open_unbound(unbound, label="api_key of backend 3")
