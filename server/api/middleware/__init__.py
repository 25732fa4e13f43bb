"""Pure ASGI middleware, each one job: compression, limits, deadlines, security headers, the
request id and the look each request gets for metrics and logs; composed in app.add_middleware."""
