"""Handwriting that is not MNIST: procedural pen strokes and handwriting fonts, as uploads.

Used to measure how a model reads other writers (scripts/robustness_eval.py) and, for the
stroke family alone, to train on styles MNIST lacks; fonts and hands are held out.
"""

from server.synth.hands import HANDS
from server.synth.proxy import (
    FAMILY_IDS,
    HELD_OUT_FAMILIES,
    ProxySet,
    font_set,
    hand_set,
    proxy_set,
    stroke_set,
)
from server.synth.render import ink_from_strokes, page, png, through_api
from server.synth.strokes import GLYPHS

__all__ = [
    "FAMILY_IDS",
    "GLYPHS",
    "HANDS",
    "HELD_OUT_FAMILIES",
    "ProxySet",
    "font_set",
    "hand_set",
    "ink_from_strokes",
    "page",
    "png",
    "proxy_set",
    "stroke_set",
    "through_api",
]
