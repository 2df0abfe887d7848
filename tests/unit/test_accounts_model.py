"""The pure account rules: email normalisation and validation, the password policy."""

from __future__ import annotations

import pytest

from duetime.accounts.model import (
    MAX_PASSWORD,
    AccountRuleError,
    check_password,
    normalize_email,
    secret_digest,
)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM \n", "alice@example.com"),
        ("a.b+tag@sub.example.org", "a.b+tag@sub.example.org"),
        ("bob@EXAMPLE.com.", "bob@example.com"),
        ("carol@bücher.example", "carol@xn--bcher-kva.example"),
        ("Zoë@example.com", "zoë@example.com"),
        ("Zoe\u0308@example.com", "zoë@example.com"),  # NFD → NFC: one account, not two
        ("admin@localhost", "admin@localhost"),
    ],
)
def test_emails_are_stored_normalised(raw: str, stored: str) -> None:
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "required"),
        ("   ", "required"),
        ("alice", "expected name@domain"),
        ("@example.com", "expected name@domain"),
        ("alice@", "expected name@domain"),
        ("al ice@example.com", "whitespace"),
        ("alice@exa\u200bmple.com", "control character"),
        ("alice\x00@example.com", "control character"),
        ("a" * 65 + "@example.com", "longer than 64"),
        ("alice@" + "a" * 250 + ".com", "longer than 254"),
        ("al,ice@example.com", "cannot carry"),
        ('"alice"@example.com', "cannot carry"),
        (".alice@example.com", "misplaced"),
        ("al..ice@example.com", "misplaced"),
        ("alice@-example.com", "not a valid domain"),
        ("alice@exa_mple.com", "not a valid domain"),
        ("alice@example..com", "not a valid domain"),
        ("alice@" + "a" * 64 + ".com", "not a valid domain"),
    ],
)
def test_bad_emails_are_refused_naming_the_field(raw: str, says: str) -> None:
    with pytest.raises(AccountRuleError) as caught:
        normalize_email(raw)
    assert caught.value.field == "email" and says in caught.value.message


def test_a_field_name_can_be_given() -> None:
    with pytest.raises(AccountRuleError) as caught:
        normalize_email("nope", field="EMAIL")
    assert caught.value.field == "EMAIL"


def test_a_good_password_is_returned_normalised() -> None:
    assert check_password("correct horse", "alice@example.com") == "correct horse"
    # NFKC: a full-width or composed form is the same password as the plain one
    assert check_password("ｃｏｒｒｅｃｔ ｈｏｒｓｅ", "a@example.com") == "correct horse"
    assert check_password("x" * 9 + "y", "a@example.com") == "x" * 9 + "y"
    assert len(check_password("p" * (MAX_PASSWORD - 1) + "q", "a@example.com")) == MAX_PASSWORD


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("", "shorter than 10"),
        ("123456789", "shorter than 10"),
        ("p" * (MAX_PASSWORD + 1), "longer than 1024"),
        ("alice@example.com", "email address"),
        ("ALICE@EXAMPLE.COM", "email address"),
        ("alice.smith", "email address"),  # the part before @ of alice.smith@example.com
        ("aaaaaaaaaaaa", "repeated"),
    ],
)
def test_the_password_policy(password: str, says: str) -> None:
    email = "alice.smith@example.com" if password == "alice.smith" else "alice@example.com"
    with pytest.raises(AccountRuleError) as caught:
        check_password(password, email, field="new_password")
    assert caught.value.field == "new_password" and says in caught.value.message


def test_secret_digest_is_sha256_hex_and_never_the_secret() -> None:
    digest = secret_digest("token")
    assert len(digest) == 64 and digest != "token"
    assert digest == "3c469e9d6c5875d37a43f353d4f88e61fcf812c66eee3457465a40b0da4153e0"
