"""The REST API: app factory, routes, schemas. Knows HTTP, not the browser."""
