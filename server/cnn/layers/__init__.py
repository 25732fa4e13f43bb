"""The layer kinds, and the registry that rebuilds them from a JSON spec."""

from server.cnn.layers.activation import ReLU, Sigmoid, Tanh
from server.cnn.layers.avgpool import AvgPool2D
from server.cnn.layers.base import Layer
from server.cnn.layers.batchnorm import BatchNorm
from server.cnn.layers.conv import Conv2D
from server.cnn.layers.dense import Dense, Flatten
from server.cnn.layers.dropout import Dropout
from server.cnn.layers.pool import MaxPool2D

LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        Conv2D,
        ReLU,
        Tanh,
        Sigmoid,
        MaxPool2D,
        AvgPool2D,
        BatchNorm,
        Flatten,
        Dense,
        Dropout,
    )
}

__all__ = [
    "LAYER_KINDS",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Tanh",
]
