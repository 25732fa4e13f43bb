"""Training, outside the request path: MNIST loading, augmentation, the loop, evaluation, and the
live jobs (`jobs/`) that the API starts and relays. Nothing here imports the web framework."""
