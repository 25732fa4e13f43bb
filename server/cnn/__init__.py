"""A pure-NumPy CNN engine: layers, a sequential model, losses, optimizers, weights files.

Arrays are NHWC float32. The engine knows nothing of files beyond its own weights format,
nor of HTTP or the browser.
"""

from server.cnn.layers import (
    LAYER_KINDS,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from server.cnn.losses import log_softmax, softmax, softmax_cross_entropy, uniform_cross_entropy
from server.cnn.model import LayerTrace, Sequential, Trace
from server.cnn.optim import SGD, Adam, Optimizer, cosine_lr, step_lr
from server.cnn.serialize import LoadedModel, ModelFileError, load_model, save_model

__all__ = [
    "LAYER_KINDS",
    "SGD",
    "Adam",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "LayerTrace",
    "LoadedModel",
    "MaxPool2D",
    "ModelFileError",
    "Optimizer",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Trace",
    "cosine_lr",
    "load_model",
    "log_softmax",
    "save_model",
    "softmax",
    "softmax_cross_entropy",
    "step_lr",
    "uniform_cross_entropy",
]
