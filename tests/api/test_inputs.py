"""server/api/inputs.py's base64: pybase64's fast path gives the standard library's answer."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from server.api.errors import InputError
from server.api.inputs import decode_base64_image, strict_b64decode


def reference(data: str) -> bytes | None:
    """What base64.b64decode(validate=True) alone gives: bytes, or None for an error."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def fast(data: str) -> bytes | None:
    try:
        return strict_b64decode(data)
    except (binascii.Error, ValueError):
        return None


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="AQgw+/=-_ \x00é", max_size=24))
@example("AAAA=")  # the standard library takes padding after a whole group; pybase64 does not
@example("AAAA==")
@example("AA=A")
@example("=AAA")
@example("AA==AA==")
@example("YQ")
def test_same_answer_as_the_standard_library(data: str) -> None:
    assert fast(data) == reference(data)


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=4096),
    st.integers(0, 10_000),
    st.sampled_from(["", "=", "==", "A", "é", "-", " "]),
)
def test_long_inputs_with_a_stray_character_anywhere_decode_as_the_standard_library(
    raw: bytes, at: int, stray: str
) -> None:
    """Long enough for pybase64's SIMD loops, with a character put in at any place."""
    encoded = base64.b64encode(raw).decode()
    at %= len(encoded) + 1
    assert fast(encoded) == reference(encoded)
    data = encoded[:at] + stray + encoded[at:]
    assert fast(data) == reference(data)


def test_data_urls_and_whitespace_as_before() -> None:
    assert decode_base64_image("data:image/png;base64,YW Jj\nZA==") == b"abcd"
    assert decode_base64_image("AAAA=") == b"\x00\x00\x00"  # the standard library's leniency
    with pytest.raises(InputError, match="not valid base64"):
        decode_base64_image("YQ")
    with pytest.raises(InputError, match="not valid base64"):
        decode_base64_image("YWJjé")
