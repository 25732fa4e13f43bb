"""server/preprocess/png.py decodes exactly what Pillow decodes, and hands the rest to Pillow.

Each PNG here is written by a small encoder in this file, which picks every row's filter, so the
decoder meets each filter and each mix of them; Pillow (libpng's rules, its own zlib) is the
reference for the pixels, and preprocess.decode with the fast path must equal it without.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, PngImagePlugin

from server import preprocess
from server.preprocess import decoding, png

NONE, SUB, UP, AVERAGE, PAETH = range(5)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _file(
    width: int,
    height: int,
    colour: int,
    idats: Sequence[bytes],
    *,
    interlace: int = 0,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A PNG of 8-bit samples: signature, IHDR, the `extra` chunks, one IDAT per stream piece,
    IEND."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, interlace)
    chunks = [_chunk(b"IHDR", header), *(_chunk(k, b) for k, b in extra)]
    chunks += [_chunk(b"IDAT", idat) for idat in idats]
    return png.SIGNATURE + b"".join(chunks) + _chunk(b"IEND", b"")


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filter_row(kind: int, row: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filtering of one row (spec section 9), the naive way, in ints."""
    x, b = row.astype(int), above.astype(int)
    a = np.concatenate([np.zeros(bpp, int), x[:-bpp]])
    c = np.concatenate([np.zeros(bpp, int), b[:-bpp]])
    if kind == NONE:
        out = x
    elif kind == SUB:
        out = x - a
    elif kind == UP:
        out = x - b
    elif kind == AVERAGE:
        out = x - (a + b) // 2
    else:
        out = x - np.array([_paeth(*v) for v in zip(a, b, c, strict=True)])
    return (out % 256).astype(np.uint8)


def encode(
    pixels: np.ndarray,
    kinds: Sequence[int],
    *,
    colour: int = png.RGBA,
    extra: Sequence[tuple[bytes, bytes]] = (),
    idat_size: int = 4096,
    level: int = 1,
) -> bytes:
    """(H, W, samples) uint8 -> PNG bytes, row r filtered with kinds[r], IDATs split as Chromium
    splits them."""
    height, width, samples = pixels.shape
    lines = pixels.reshape(height, width * samples)
    above = np.zeros(width * samples, np.uint8)
    raw = bytearray()
    for kind, line in zip(kinds, lines, strict=True):
        raw += bytes([kind]) + _filter_row(kind, line, above, samples).tobytes()
        above = line
    stream = zlib.compress(bytes(raw), level)
    idats = [stream[i : i + idat_size] for i in range(0, len(stream), idat_size)]
    return _file(width, height, colour, idats, extra=extra)


def gray_rgba(levels: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """(H, W) levels -> (H, W, 4) gray RGBA, opaque unless alpha is given."""
    alpha = np.full_like(levels, 255) if alpha is None else alpha
    return np.stack([levels, levels, levels, alpha], axis=-1)


def drawing(size: int = 280, seed: int = 0) -> np.ndarray:
    """An anti-aliased white stroke on black, (size, size) uint8, like the pad's."""
    big = Image.new("L", (4 * size, 4 * size), 0)
    rng = np.random.default_rng(seed)
    points = [tuple(p) for p in rng.uniform(0.2, 0.8, (6, 2)) * 4 * size]
    ImageDraw.Draw(big).line(points, fill=255, width=size // 3)
    return np.asarray(big.resize((size, size), Image.Resampling.BOX))


def pillow(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """What Pillow decodes: (H, W) levels by its RGB->L rule, and alpha when there is one."""
    with Image.open(io.BytesIO(data)) as img:
        alpha = np.asarray(img.getchannel("A")) if img.mode == "RGBA" else None
        return np.asarray(img.convert("L")), alpha


def pillow_decode(data: bytes) -> np.ndarray:
    """preprocess.decode's Pillow path alone, as every upload took before the fast path."""
    with Image.open(io.BytesIO(data)) as img:
        return decoding._gray(decoding._upright(decoding._load(img)))


def fast(data: bytes) -> tuple[np.ndarray, np.ndarray | None] | None:
    plain = png.parse(data)
    return None if plain is None else plain.gray()


def assert_same_as_pillow(data: bytes) -> None:
    decoded = fast(data)
    assert decoded is not None, "expected the fast path to decode this"
    levels, alpha = pillow(data)
    np.testing.assert_array_equal(decoded[0], levels)
    if decoded[1] is None:  # no alpha channel, or every pixel opaque
        assert alpha is None or (alpha == 255).all()
    else:
        assert alpha is not None, "the fast path made up an alpha channel"
        np.testing.assert_array_equal(decoded[1], alpha)
        assert not (alpha == 255).all(), "an opaque image's alpha is left out"
    np.testing.assert_array_equal(preprocess.decode(data), pillow_decode(data))


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param([UP] * 280, id="chromium: Up on every row"),
        pytest.param([NONE] * 280, id="no filter"),
        pytest.param([SUB] * 280, id="Sub on every row"),
        pytest.param([NONE, *[UP] * 279], id="None then Up"),
        pytest.param([(NONE, SUB, UP)[r % 3] for r in range(280)], id="None, Sub, Up in turn"),
        pytest.param([UP] * 100 + [SUB] + [UP] * 179, id="Up runs around a Sub row"),
    ],
)
def test_gray_rgba_drawing_matches_pillow(kinds: list[int]) -> None:
    assert_same_as_pillow(encode(gray_rgba(drawing()), kinds))


def test_the_same_image_in_any_filters_decodes_the_same() -> None:
    image = gray_rgba(drawing(64, seed=3))
    rng = np.random.default_rng(5)
    expected = pillow(encode(image, [NONE] * 64))[0]
    for _ in range(5):
        decoded = fast(encode(image, list(rng.integers(0, 3, 64))))
        assert decoded is not None
        np.testing.assert_array_equal(decoded[0], expected)


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param([UP] * 12, id="Up on every row"),
        pytest.param([NONE] * 12, id="no filter"),
        pytest.param([SUB] * 12, id="Sub on every row"),
        pytest.param([UP, SUB, NONE, UP] * 3, id="Up first, then mixed"),
        pytest.param([SUB, UP, UP, NONE] * 3, id="Sub first, then mixed"),
    ],
)
def test_alpha_is_left_out_exactly_when_every_pixel_is_opaque(kinds: list[int]) -> None:
    levels = drawing(12, seed=4)
    opaque = np.full_like(levels, 255)
    decoded = fast(encode(gray_rgba(levels, opaque), kinds))
    assert decoded is not None
    assert decoded[1] is None
    for y, x, a in [(0, 0, 254), (11, 11, 0), (5, 0, 1), (0, 7, 128), (6, 6, 255 - 128)]:
        alpha = opaque.copy()
        alpha[y, x] = a  # one pixel not opaque, anywhere: the alpha comes back, as Pillow's
        data = encode(gray_rgba(levels, alpha), kinds)
        assert_same_as_pillow(data)
        decoded = fast(data)
        assert decoded is not None
        assert decoded[1] is not None


def test_gray_colour_type_matches_pillow() -> None:
    levels = drawing(96, seed=1)[..., None]  # (H, W, 1)
    assert_same_as_pillow(encode(levels, [UP, SUB, NONE] * 32, colour=png.GRAY))


def test_translucent_gray_is_composited_as_pillow_path_does() -> None:
    levels = drawing(80, seed=2)
    alpha = np.where(levels > 0, 255, 0).astype(np.uint8)  # strokes on a transparent canvas
    data = encode(gray_rgba(levels, alpha), [UP] * 80)
    assert_same_as_pillow(data)
    assert preprocess.decode(data).dtype == np.float32


def test_chunks_that_change_nothing_are_skipped() -> None:
    extra = [(b"sRGB", b"\x00"), (b"pHYs", struct.pack(">IIB", 2835, 2835, 1))]
    assert_same_as_pillow(encode(gray_rgba(drawing(40)), [UP] * 40, extra=extra))


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    seed=st.integers(0, 2**32 - 1),
    translucent=st.booleans(),
    idat_size=st.integers(1, 200),
)
def test_any_gray_image_and_filters_match_pillow(
    height: int, width: int, seed: int, translucent: bool, idat_size: int
) -> None:
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 256, (height, width), dtype=np.uint8)
    alpha = rng.integers(0, 256, (height, width), dtype=np.uint8) if translucent else None
    kinds = list(rng.integers(0, 3, height))
    assert_same_as_pillow(encode(gray_rgba(levels, alpha), kinds, idat_size=idat_size))


def _pillow_png(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **params)
    return buffer.getvalue()


def _with_bad_crc(data: bytes) -> bytes:
    broken = bytearray(data)
    broken[-20] ^= 0xFF  # inside the last IDAT's data
    return bytes(broken)


def _text(key: str, value: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


def _interlaced_pixel() -> bytes:
    """A 1x1 Adam7 PNG: its one pixel is all of pass 1 (Pillow writes no interlaced files)."""
    return _file(1, 1, png.RGBA, [zlib.compress(b"\x00\xc8\xc8\xc8\xff")], interlace=1)


def _colour() -> np.ndarray:
    image = gray_rgba(drawing(32))
    image[5, 5, 0] ^= 1  # one pixel not gray
    return image


GRAY = gray_rgba(drawing(32))
PASSED_TO_PILLOW = {
    "colour pixels": encode(_colour(), [UP] * 32),
    "Average rows": encode(GRAY, [UP] * 31 + [AVERAGE]),
    "Paeth rows": encode(GRAY, [PAETH] + [UP] * 31),
    "RGB without alpha": encode(GRAY[..., :3], [UP] * 32, colour=2),
    "gray with alpha": encode(GRAY[..., ::3], [UP] * 32, colour=4),
    "palette": _pillow_png(Image.fromarray(drawing(32)).convert("P")),
    "16-bit": _pillow_png(Image.fromarray(drawing(32).astype(np.uint16) * 257)),
    "interlaced": _interlaced_pixel(),
    "transparency key": encode(GRAY[..., :1], [UP] * 32, colour=0, extra=[(b"tRNS", b"\x00\x00")]),
    "EXIF": encode(GRAY, [UP] * 32, extra=[(b"eXIf", Image.Exif().tobytes())]),
    "text": _pillow_png(Image.fromarray(GRAY, "RGBA"), pnginfo=_text("Comment", "a digit")),
    "bad CRC": _with_bad_crc(encode(GRAY, [UP] * 32)),
    "truncated": encode(GRAY, [UP] * 32)[:-30],
    "JPEG": b"\xff\xd8\xff\xe0" + b"\x00" * 40,
}


BROKEN = {"bad CRC", "truncated", "JPEG"}  # Pillow refuses these too, in decode's words


@pytest.mark.parametrize("name", PASSED_TO_PILLOW)
def test_what_it_does_not_decode_goes_to_pillow(name: str) -> None:
    data = PASSED_TO_PILLOW[name]
    assert fast(data) is None
    if name in BROKEN:
        with pytest.raises(preprocess.PreprocessError):
            preprocess.decode(data)
    else:
        np.testing.assert_array_equal(preprocess.decode(data), pillow_decode(data))


def test_a_stream_of_the_wrong_length_goes_to_pillow() -> None:
    rows = 32 * (1 + 32 * 4)
    short = zlib.compress(b"\x02" * (rows - 1))  # one byte short of the image
    data = _file(32, 32, png.RGBA, [short])
    plain = png.parse(data)
    assert plain is not None
    assert plain.gray() is None
    with pytest.raises(preprocess.NotAnImage):
        preprocess.decode(data)


def test_size_is_refused_from_the_header_before_inflating() -> None:
    data = _file(5000, 10, png.RGBA, [b""])
    with pytest.raises(preprocess.ImageTooLarge, match="5000x10"):
        preprocess.decode(data)
