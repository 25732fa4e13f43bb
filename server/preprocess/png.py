"""Gray PNGs as a canvas exports them, decoded without Pillow, in a fraction of Pillow's time.

Pillow inflates with zlib, most of a whole prediction's decoding for the pad's 280x280 RGBA
export; libdeflate inflates it many times faster (docs/speed.md). What is left is undoing the row
filters browsers write (Chromium: Up on every row) and turning RGBA into gray, and a gray
drawing (R = G = B, which the filtered bytes already show) needs only two of its four channels
unfiltered. Anything else (colour, palettes, 16 bits, interlacing, a transparency key, Average
or Paeth rows, EXIF or text chunks that could carry it, a bad checksum, a truncated stream)
gets None, and Pillow decodes it as before, with its own messages for broken files. Where this
decodes, the levels and alpha are Pillow's, byte for byte (an alpha of 255 everywhere, the
canvas's, is seen in the filtered bytes and left out: nothing to composite).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import deflate
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRAY, RGBA = 0, 6  # the colour types decoded here, 8 bits a sample
SAMPLES = {GRAY: 1, RGBA: 4}
# Chunks that change nothing in Pillow's decoding and conversion to gray: colour-space hints it
# does not apply, pixel density, time, background colour, significant bits.
IGNORED = frozenset({b"sRGB", b"gAMA", b"cHRM", b"iCCP", b"pHYs", b"tIME", b"bKGD", b"sBIT"})
NONE, SUB, UP = 0, 1, 2  # the filter types undone here; Average (3) and Paeth (4) go to Pillow
_HEADER = struct.Struct(">IIBBBBB")  # width, height, depth, colour, compression, filter, interlace
_CHUNK = struct.Struct(">I4s")  # length, type
_CRC = struct.Struct(">I")


@dataclass(frozen=True)
class PlainPNG:
    """An 8-bit gray or RGBA PNG, not interlaced, CRCs checked; its pixels not yet inflated."""

    width: int
    height: int
    samples: int
    stream: bytes  # the IDAT chunks' zlib stream, joined

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def gray(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(H, W) uint8 levels and alpha (None without an alpha channel, or when every pixel is
        opaque); None if not decodable.

        None too for RGBA pixels that are not gray: Pillow converts colour to gray as fast.
        """
        stride = self.width * self.samples
        expected = self.height * (stride + 1)
        try:
            raw = deflate.zlib_decompress(self.stream, expected)
        except deflate.DeflateError:
            return None
        if len(raw) != expected:
            return None
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(self.height, stride + 1)
        kinds, lines = rows[:, 0], rows[:, 1:]  # (H,) filter types, (H, stride) filtered bytes
        if kinds.max() > UP:
            return None
        if self.samples == 1:
            return unfilter(kinds, lines), None
        # (H, W): a little-endian word a pixel: A B G R, high to low. Copied first: each row
        # starts a byte past its filter type, and unaligned words take NumPy's buffered loops
        # (the gray check 61 -> 50 us with the copy, on the pad's 280x280 export).
        pixels = np.ascontiguousarray(lines).view("<u4")
        # Filters add and subtract per channel, so R = G = B after unfiltering iff before.
        word = pixels >> 8  # one scratch word a pixel, reused: fewer large temporaries
        word ^= pixels  # low bytes: R ^ G, G ^ B
        word &= 0xFFFF
        if word.any():
            return None
        levels = unfilter(kinds, pixels.astype(np.uint8))  # (H, W): the low byte
        alpha = np.right_shift(pixels, 24, out=word)  # (H, W): the high byte, still in words
        if opaque(kinds, alpha):  # a canvas export: no alpha to unfilter
            return levels, None
        return levels, unfilter(kinds, alpha.astype(np.uint8))


def parse(data: bytes | bytearray | memoryview) -> PlainPNG | None:
    """The header and pixel stream of a plain PNG, every chunk's CRC checked; None otherwise."""
    view = memoryview(data)
    if view[: len(SIGNATURE)] != SIGNATURE:
        return None
    position, header, stream = len(SIGNATURE), None, []
    while position + 12 <= len(view):
        length, kind = _CHUNK.unpack_from(view, position)
        end = position + 12 + length
        if end > len(view):
            return None
        if deflate.crc32(view[position + 4 : end - 4]) != _CRC.unpack_from(view, end - 4)[0]:
            return None
        body = view[position + 8 : end - 4]
        if header is None:
            if kind != b"IHDR" or length != _HEADER.size:
                return None
            header = _HEADER.unpack(body)
        elif kind == b"IDAT":
            stream.append(body)
        elif kind == b"IEND":
            return _plain(header, b"".join(stream))
        elif kind not in IGNORED:
            return None  # PLTE, tRNS, eXIf, text, animation, anything unknown: Pillow's job
        position = end
    return None  # no IEND: truncated


def opaque(kinds: np.ndarray, alpha: np.ndarray) -> bool:
    """Whether (H, W) filtered alpha bytes (in any unsigned dtype) unfilter to 255 everywhere,
    read off the filtered bytes: 255 is what a None row holds, what a Sub row holds first and
    what an Up first row (nothing above it) holds throughout; every other byte is 0, the
    difference of two 255s. Unfiltering has one inverse, so this pattern and no other. A
    compare where unfiltering takes a doubling's passes (decode 0.25 -> 0.20 ms on the pad's
    export with the aligned copy in gray(), scripts/stage_times.py's decode stage).
    """
    if kinds.min() == UP:  # Chromium's exports: Up on every row
        return bool(alpha[0].min() == 255) and not alpha[1:].any()
    expected = np.zeros_like(alpha)
    expected[kinds == NONE] = 255
    expected[kinds == SUB, 0] = 255
    if kinds[0] == UP:
        expected[0] = 255
    return bool(np.array_equal(alpha, expected))


def unfilter(kinds: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Undo None, Sub and Up filters (PNG spec, section 9) on one sample a pixel, modulo 256.

    kinds: (H,) filter type of each row, none above Up; lines: (H, W) filtered bytes. A Sub row
    is a running sum along the row, an Up row adds the row above: a run of Up rows is a running
    sum down the columns, started from the row above the run.
    """
    out = np.array(lines)  # (H, W), a copy to write in
    sub = kinds == SUB
    if sub.any():
        out[sub] = np.cumsum(out[sub], axis=1, dtype=np.uint8)
    up = kinds == UP
    if up.all():  # Chromium's exports
        return _running_sum_down(out)
    if up.any():
        # Row r of an Up run is the last non-Up row s above it plus the Up rows in (s, r]:
        # with total = the running sum of the Up rows alone, row r = row s + total[r] - total[s].
        total = _running_sum_down(np.where(up[:, None], out, np.uint8(0)))
        anchor = np.maximum.accumulate(np.where(up, -1, np.arange(len(kinds))))  # -1: none
        start = out[anchor] - total[anchor]  # (H, W); rows with anchor -1 fixed next
        start[anchor < 0] = 0
        out[up] = start[up] + total[up]
    return out


def _running_sum_down(x: np.ndarray) -> np.ndarray:
    """Running sum down the columns, modulo 256, in log2(H) whole-array additions.

    NumPy's cumsum along the first axis walks one column at a time; Hillis and Steele's scan
    does the rows in log2(H) whole-array adds instead (docs/speed.md).
    """
    current, spare = x, np.empty_like(x)
    shift = 1
    while shift < len(x):
        spare[:shift] = current[:shift]
        np.add(current[shift:], current[:-shift], out=spare[shift:])
        current, spare = spare, current
        shift *= 2
    return current


def _plain(header: tuple[int, ...], stream: bytes) -> PlainPNG | None:
    width, height, depth, colour, compression, filtering, interlace = header
    samples = SAMPLES.get(colour)
    if samples is None or depth != 8 or (compression, filtering, interlace) != (0, 0, 0):
        return None
    if width == 0 or height == 0:
        return None
    return PlainPNG(width, height, samples, stream)
