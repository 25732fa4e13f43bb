"""Why an upload cannot become a digit: typed ValueErrors whose messages are for the sender.

The same concept as server/api/errors.py one level down: there each of these gets its status.
"""

from __future__ import annotations

NO_DIGIT = (
    "no digit found in the image; expected a digit clearly darker or lighter than its background"
)


class PreprocessError(ValueError):
    """Base class: the upload cannot be turned into an MNIST digit (a client error)."""


class NotAnImage(PreprocessError):  # noqa: N818 (the API's names)
    """The bytes are not a decodable image, or the image is truncated or corrupt."""


class UnsupportedImageType(PreprocessError):  # noqa: N818 (the API's names)
    """An image Pillow can read, but of a format (TIFF, ICO, ...) we do not accept."""


class ImageTooLarge(PreprocessError):  # noqa: N818 (the API's names)
    """The image is larger than allowed, judged from its header before decoding."""


class NoDigitFound(PreprocessError):  # noqa: N818 (the API's names)
    """The image decodes fine but holds nothing that stands out from its background."""
