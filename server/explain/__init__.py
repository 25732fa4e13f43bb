"""Explanations of a model's reading: pure functions of (model, input, options)."""
