"""Ways of looking into a model, as pure functions of (model, input, options).

Nothing here knows about HTTP, and nothing here changes the model it is given: edits build a
request-scoped network that shares the unchanged layers, read-only.
"""
