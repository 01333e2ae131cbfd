"""Masking customers' personal data before a prompt leaves the host."""

from __future__ import annotations

import pytest

from chatdesk.drafting.pii import iban_valid, luhn_valid, mask_pii, should_mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to john.doe+shop@example.co.uk please", "write to [email] please"),
        ("card 4111 1111 1111 1111, exp 12/27", "card [card], exp 12/27"),
        ("card 4111-1111-1111-1112 is mistyped", "card 4111-1111-1111-1112 is mistyped"),
        ("call +44 20 7946 0958 or (555) 123-4567.", "call [phone] or [phone]."),
        ("my mobile is 0612345678", "my mobile is [phone]"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [iban] please"),
        ("GB82WEST12345698765432", "[iban]"),
        ("order 12345678 of 2024-05-01 cost 1299.99", "order 12345678 of 2024-05-01 cost 1299.99"),
        ("ids 12, 13 and 14", "ids 12, 13 and 14"),
    ],
)
def test_personal_data_becomes_placeholders_and_the_rest_stays(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


def test_checksums() -> None:
    assert luhn_valid("4242424242424242") and not luhn_valid("4242424242424241")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE88 3704 0044 0532 0130 00")


@pytest.mark.parametrize(
    ("mode", "url", "masked"),
    [
        ("auto", "http://127.0.0.1:8000/v1", False),
        ("auto", "http://localhost/v1", False),
        ("auto", "http://[::1]:8080/v1", False),
        ("auto", "https://api.openai.com/v1", True),
        ("auto", "http://10.0.0.5/v1", True),
        ("always", "http://127.0.0.1/v1", True),
        ("never", "https://api.openai.com/v1", False),
    ],
)
def test_masking_mode(mode: str, url: str, masked: bool) -> None:
    assert should_mask(mode, url) is masked


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        should_mask("maybe", "http://x")
