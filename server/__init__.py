"""ConvScope: see inside a convolutional network, layer by layer."""

__version__ = "0.1.0"
