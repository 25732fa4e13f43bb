"""Is it a digit at all? A score per input from the same forward pass that reads it."""
