"""Handwriting that is not MNIST: procedural pen strokes and handwriting fonts, as uploads.

Used to measure how a model reads other writers (scripts/robustness_eval.py) and, for the
stroke family, to train on styles MNIST lacks.
"""

from server.synth.proxy import ProxySet, font_set, proxy_set, stroke_set
from server.synth.render import ink_from_strokes, page, png, through_api
from server.synth.strokes import GLYPHS

__all__ = [
    "GLYPHS",
    "ProxySet",
    "font_set",
    "ink_from_strokes",
    "page",
    "png",
    "proxy_set",
    "stroke_set",
    "through_api",
]
