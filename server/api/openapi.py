"""The OpenAPI schema as this server really answers: FastAPI's schema from the routes, plus
what only the whole app knows.

The routes and their pydantic models say what each route takes and answers. Here, in one place,
what cuts across them: the statuses the middleware answers on every route (408, 413, 500, 503),
one error body for every 4xx and 5xx (FastAPI's default 422 schema replaced), the model names
this server loaded (an enum, known once the lifespan has loaded them), the configured batch
limit, and `/predict/file`'s JSON form field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from server.config import Settings

ERROR_REF = "#/components/schemas/ErrorResponse"
ERROR_CONTENT = {"application/json": {"schema": {"$ref": ERROR_REF}}}
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before asking again",
        "schema": {"type": "integer", "minimum": 0},
    }
}
# `training:<id>` (a job's newest weights) and `training:<id>@<step>` (its snapshot nearest step)
TRAINING_MODEL = r"^training:[^@]*(@.*)?$"
UNSTREAMED = {"/healthz"}  # never refused for being busy (middleware/concurrency.py)
METHODS = ("get", "put", "post", "delete", "patch")

Schema = dict[str, Any]


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """app.openapi() builds the schema below; it is kept once the models are loaded (before
    that, the model names are not known yet, so it is built again next time)."""

    def openapi() -> Schema:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        models = getattr(app.state, "models", None)
        complete(schema, settings, None if models is None else list(models.models))
        if models is not None:
            app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: Schema, settings: Settings, model_names: list[str] | None) -> None:
    """Everything FastAPI cannot know from one route, written into `schema` in place."""
    for path, operation in operations(schema):
        add_middleware_answers(path, operation, settings)
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                response["content"] = ERROR_CONTENT
                if status in ("429", "503"):
                    response["headers"] = RETRY_AFTER
        if model_names is not None:
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "model":
                    parameter["schema"] = model_name_schema(model_names)
    components = schema["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for name in ("PredictRequest", "BatchRequest", "CounterfactualRequest"):
        if model_names is not None:
            components[name]["properties"]["model"] = model_name_schema(model_names)
    for field in ("images", "pixels"):
        components["BatchRequest"]["properties"][field]["maxItems"] = settings.max_batch
    describe_file_form(schema)


def operations(schema: Schema) -> Iterator[tuple[str, Schema]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, item[method]


def add_middleware_answers(path: str, operation: Schema, settings: Settings) -> None:
    """The answers every route can get from the middleware and the error handlers."""
    responses = operation["responses"]
    takes_body = "requestBody" in operation
    takes_input = takes_body or any(p["in"] != "path" for p in operation.get("parameters", []))
    if takes_input:
        responses.setdefault("422", {"description": "a bad parameter or body, named in `detail`"})
    if takes_body:
        responses.setdefault(
            "408",
            {
                "description": f"the body did not arrive within {settings.body_timeout_s:g} s "
                "of the request (the connection closes)"
            },
        )
        responses.setdefault("413", {"description": f"a body over {settings.max_body_bytes} bytes"})
    if path not in UNSTREAMED:
        responses.setdefault(
            "503",
            {"description": f"more than {settings.max_concurrency} requests in progress"},
        )
    responses.setdefault("500", {"description": "a bug; the answer says only that it is logged"})
    operation["responses"] = dict(sorted(responses.items()))


def model_name_schema(names: list[str]) -> Schema:
    """A model this server loaded, a training job's (`training:<id>[@<step>]`), or none."""
    return {
        "anyOf": [
            {"type": "string", "enum": names},
            {"type": "string", "pattern": TRAINING_MODEL, "maxLength": 200},
            {"type": "null"},
        ],
        "description": "a model of GET /api/v1/models, or training:<id>[@<step>] for a training "
        "job's weights; absent: the default model; 404 for a name nobody answers to",
    }


def describe_file_form(schema: Schema) -> None:
    """/predict/file's form: the file, and `edits` as the JSON of /predict's `edits` object
    (FastAPI can only say it is a string)."""
    body = schema["paths"]["/api/v1/predict/file"]["post"]["requestBody"]
    media = body["content"]["multipart/form-data"]
    reference: str = media["schema"]["$ref"]
    schema["components"]["schemas"].pop(reference.rsplit("/", 1)[-1])
    media["schema"] = {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "an image file: PNG, JPEG, WebP, BMP or GIF",
            },
            "edits": {
                "$ref": "#/components/schemas/EditsIn",
                "description": "the JSON of /predict's `edits` object",
            },
        },
    }
    media["encoding"] = {"edits": {"contentType": "application/json"}}
