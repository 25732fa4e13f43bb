"""Request and response models: the public contract, and the OpenAPI schema built from it;
one module per group of routes."""
