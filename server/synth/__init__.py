"""Synthetic drawings: inputs made by code, for measuring the network outside MNIST."""
