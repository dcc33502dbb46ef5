"""VERP addresses: made from a base address and a delivery id, read back only when untouched."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from dripcourse.domain.course_settings import Sender
from dripcourse.mail.verp import BounceAddresses, bounce_base, looks_like_verp

ADDRESSES = BounceAddresses("test-secret-key")


@given(st.integers(min_value=1, max_value=10**15))
def test_an_address_reads_back_to_its_delivery_in_any_case(delivery_id: int) -> None:
    address = ADDRESSES.make("bounces@example.com", delivery_id)
    assert address.startswith(f"bounces+{delivery_id}-") and address.endswith("@example.com")
    assert ADDRESSES.read(address) == delivery_id
    assert ADDRESSES.read(f"<{address.upper()}>") == delivery_id  # servers may change case


def test_altered_forged_or_foreign_addresses_name_no_delivery() -> None:
    address = ADDRESSES.make("bounces@example.com", 42)
    tag = address.split("-")[1].split("@")[0]
    assert ADDRESSES.read(address.replace("+42-", "+43-")) is None
    assert ADDRESSES.read(address.replace(tag, tag[::-1])) is None
    assert BounceAddresses("another-key").read(address) is None
    assert ADDRESSES.read("bounces@example.com") is None
    assert looks_like_verp(address.replace(tag, "00000000"))
    assert not looks_like_verp("ada@example.com")


def test_the_base_comes_from_the_course_then_the_setting_then_the_sender() -> None:
    sender = Sender(name="Course", email="course@example.org", bounce_email=None)
    assert bounce_base(sender, "") == "bounces@example.org"
    assert bounce_base(sender, "returns@mail.example.org") == "returns@mail.example.org"
    sender = replace(sender, bounce_email="b@example.net")
    assert bounce_base(sender, "returns@mail.example.org") == "b@example.net"
