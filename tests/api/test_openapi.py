"""The app's own OpenAPI schema: every contract route is in it, and every real response,
success or error, validates against the schema it documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

CONTRACT = {
    "/healthz": {"get"},
    "/api/v1/model": {"get"},
    "/api/v1/model/layers/{name}/weights": {"get"},
    "/api/v1/predict": {"post"},
    "/api/v1/predict/file": {"post"},
    "/api/v1/predict/batch": {"post"},
}
WEIGHTS = "/api/v1/model/layers/{name}/weights"


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def validate(openapi: dict[str, Any]) -> Callable[[str, str, Any], None]:
    """validate(template, method, response): the body against the documented schema for
    that status, $refs resolved against the document's components."""

    def check(template: str, method: str, response: Any) -> None:
        responses = openapi["paths"][template][method]["responses"]
        status = str(response.status_code)
        assert status in responses, f"{method.upper()} {template} answered undocumented {status}"
        schema = responses[status]["content"]["application/json"]["schema"]
        document = {**schema, "components": openapi["components"]}
        validator = jsonschema.Draft202012Validator(document)
        errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
        assert not errors, f"{method.upper()} {template} {status}: " + "; ".join(
            f"{list(e.path)}: {e.message[:200]}" for e in errors[:5]
        )

    return check


def test_openapi_is_version_3_1_with_a_title(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    assert openapi["info"]["title"] == "ConvScope"


def test_every_contract_path_is_documented_with_its_methods(openapi: dict[str, Any]) -> None:
    documented = {path: set(ops) for path, ops in openapi["paths"].items()}
    for path, methods in CONTRACT.items():
        assert path in documented, f"{path} missing from /openapi.json"
        assert documented[path] == methods, path


@pytest.mark.parametrize(
    "path", ["/api/v1/predict", "/api/v1/predict/file", "/api/v1/predict/batch"]
)
def test_predict_routes_document_their_error_statuses(openapi: dict[str, Any], path: str) -> None:
    assert {"200", "413", "415", "422"} <= set(openapi["paths"][path]["post"]["responses"])


def test_weights_route_documents_404(openapi: dict[str, Any]) -> None:
    assert "404" in openapi["paths"][WEIGHTS]["get"]["responses"]


def test_predict_request_schema_accepts_a_valid_body_and_rejects_an_extra_field(
    openapi: dict[str, Any], digit_pixels: np.ndarray
) -> None:
    body_schema = openapi["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    schema = {**body_schema["application/json"]["schema"], "components": openapi["components"]}
    good = {"pixels": digit_pixels.tolist(), "activations": True, "encoding": "base64"}
    jsonschema.validate(good, schema, cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "colour": 1}, schema, cls=jsonschema.Draft202012Validator)


def test_docs_serve_html(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower()
    assert "/openapi.json" in response.text


# --- real responses against the schema -----------------------------------------------------


def test_healthz_matches_its_schema(client: TestClient, validate: Callable[..., None]) -> None:
    validate("/healthz", "get", client.get("/healthz"))


def test_model_card_matches_its_schema(client: TestClient, validate: Callable[..., None]) -> None:
    validate("/api/v1/model", "get", client.get("/api/v1/model"))


@pytest.mark.parametrize("name", ["conv1", "fc2", "relu1", "softmax"])
@pytest.mark.parametrize("encoding", ["list", "base64"])
def test_layer_weights_match_their_schema(
    client: TestClient, validate: Callable[..., None], name: str, encoding: str
) -> None:
    response = client.get(f"/api/v1/model/layers/{name}/weights", params={"encoding": encoding})
    assert response.status_code == 200
    validate(WEIGHTS, "get", response)


def test_unknown_layer_404_matches_its_schema(
    client: TestClient, validate: Callable[..., None]
) -> None:
    response = client.get("/api/v1/model/layers/conv9/weights")
    assert response.status_code == 404
    validate(WEIGHTS, "get", response)


def test_bad_weights_encoding_422_matches_its_schema(
    client: TestClient, validate: Callable[..., None]
) -> None:
    response = client.get("/api/v1/model/layers/conv1/weights", params={"encoding": "hex"})
    assert response.status_code == 422
    validate(WEIGHTS, "get", response)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"activations": True},
        {"saliency": True, "target": 4},
        {"activations": True, "saliency": True, "encoding": "base64"},
        {"activations": True, "saliency": True, "encoding": "uint8"},
        {"steps": True},
        {"steps": True, "encoding": "base64"},
    ],
    ids=[
        "plain",
        "activations",
        "saliency",
        "everything-base64",
        "everything-uint8",
        "steps",
        "steps-base64",
    ],
)
def test_predict_answers_match_their_schema(
    client: TestClient,
    validate: Callable[..., None],
    digit_pixels: np.ndarray,
    digit_png: bytes,
    kit: Any,
    options: dict[str, Any],
) -> None:
    by_pixels = client.post("/api/v1/predict", json={"pixels": digit_pixels.tolist(), **options})
    by_image = client.post("/api/v1/predict", json={"image": kit.b64(digit_png), **options})
    assert by_pixels.status_code == by_image.status_code == 200
    validate("/api/v1/predict", "post", by_pixels)
    validate("/api/v1/predict", "post", by_image)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"image": "***"}, 422),
        ({"image": "", "encoding": "hex"}, 422),
        ({"image": "bm90IGFuIGltYWdl"}, 422),
    ],
    ids=["neither", "bad-base64", "bad-encoding", "not-an-image"],
)
def test_predict_errors_match_their_schema(
    client: TestClient, validate: Callable[..., None], body: dict[str, Any], status: int
) -> None:
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == status
    validate("/api/v1/predict", "post", response)


def test_predict_415_and_413_match_their_schema(
    client: TestClient, validate: Callable[..., None], kit: Any
) -> None:
    tiff = kit.image_bytes(kit.draw_digit(1, size=64), "TIFF")
    unsupported = client.post("/api/v1/predict", json={"image": kit.b64(tiff)})
    assert unsupported.status_code == 415
    validate("/api/v1/predict", "post", unsupported)
    wide = kit.image_bytes(Image.new("L", (4097, 1)))
    too_large = client.post("/api/v1/predict", json={"image": kit.b64(wide)})
    assert too_large.status_code == 413
    validate("/api/v1/predict", "post", too_large)


def test_body_limit_413_matches_its_schema(
    client: TestClient, validate: Callable[..., None]
) -> None:
    body = b'{"image": "' + b"A" * (5 * 1024 * 1024) + b'"}'
    response = client.post(
        "/api/v1/predict", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    validate("/api/v1/predict", "post", response)


def test_predict_file_answers_match_their_schema(
    client: TestClient, validate: Callable[..., None], digit_png: bytes, kit: Any
) -> None:
    files = {"file": ("digit.png", digit_png, "image/png")}
    ok = client.post("/api/v1/predict/file?activations=true&saliency=true", files=files)
    assert ok.status_code == 200
    validate("/api/v1/predict/file", "post", ok)
    bad_query = client.post("/api/v1/predict/file?encoding=hex", files=files)
    assert bad_query.status_code == 422
    validate("/api/v1/predict/file", "post", bad_query)
    tiff = {
        "file": ("digit.tif", kit.image_bytes(kit.draw_digit(1, size=64), "TIFF"), "image/tiff")
    }
    unsupported = client.post("/api/v1/predict/file", files=tiff)
    assert unsupported.status_code == 415
    validate("/api/v1/predict/file", "post", unsupported)


def test_batch_answers_match_their_schema(
    client: TestClient, validate: Callable[..., None], digit_pixels: np.ndarray
) -> None:
    ok = client.post("/api/v1/predict/batch", json={"pixels": [digit_pixels.tolist()] * 3})
    assert ok.status_code == 200
    validate("/api/v1/predict/batch", "post", ok)
    too_many = client.post("/api/v1/predict/batch", json={"images": ["x"] * 257})
    assert too_many.status_code == 413
    validate("/api/v1/predict/batch", "post", too_many)
    neither = client.post("/api/v1/predict/batch", json={})
    assert neither.status_code == 422
    validate("/api/v1/predict/batch", "post", neither)


def test_uint8_wire_models_are_documented_and_strict(
    openapi: dict[str, Any],
    client: TestClient,
    digit_pixels: np.ndarray,
) -> None:
    schemas = openapi["components"]["schemas"]
    assert {"QuantizedMap", "BitMask", "Float16Map", "ByteMask"} <= set(schemas)
    assert set(schemas["QuantizedMap"]["required"]) == {"dtype", "shape", "data", "scale", "offset"}
    assert schemas["BitMask"]["properties"]["dtype"]["const"] == "bit"
    response = openapi["paths"]["/api/v1/predict"]["post"]["responses"]["200"]
    schema = {
        **response["content"]["application/json"]["schema"],
        "components": openapi["components"],
    }
    body = client.post(
        "/api/v1/predict",
        json={"pixels": digit_pixels.tolist(), "activations": True, "encoding": "uint8"},
    ).json()
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(body)
    del body["layers"][0]["data"]["scale"]  # a quantised map without its scale is no map
    assert not validator.is_valid(body)
    body = client.post(
        "/api/v1/predict",
        json={"pixels": digit_pixels.tolist(), "activations": True, "encoding": "uint8"},
    ).json()
    body["layers"][2]["mask"]["dtype"] = "bool"  # a dtype no encoding sends
    assert not validator.is_valid(body)


# --- the contract issue 23 asked for --------------------------------------------------------


def test_every_error_answer_is_the_one_error_body_as_json(openapi: dict[str, Any]) -> None:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert set(response["content"]) == {"application/json"}, (path, status)
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)
            assert "500" in operation["responses"], (method, path)
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


def test_a_validation_error_matches_the_error_body(
    client: TestClient, validate: Callable[..., None]
) -> None:
    response = client.post("/api/v1/predict", json={"pixels": [[0.5] * 28] * 27, "colour": 1})
    assert response.status_code == 422
    assert len(response.json()["errors"]) == 2
    validate("/api/v1/predict", "post", response)


def test_503_and_429_document_retry_after(openapi: dict[str, Any]) -> None:
    post = openapi["paths"]["/api/v1/trainings"]["post"]["responses"]
    assert "Retry-After" in post["429"]["headers"]
    assert "Retry-After" in post["503"]["headers"]
    assert "503" not in openapi["paths"]["/healthz"]["get"]["responses"]  # never refused


def test_405_allows_exactly_the_methods_of_the_path(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    for path, sent in [("/api/v1/trainings/0", "/api/v1/trainings/{job_id}"), ("/healthz", None)]:
        response = client.request("OPTIONS", path)
        assert response.status_code == 405
        documented = sorted(m.upper() for m in openapi["paths"][sent or path])
        assert response.headers["allow"].split(", ") == documented


def test_post_trainings_links_to_every_route_that_takes_its_id(openapi: dict[str, Any]) -> None:
    links = openapi["paths"]["/api/v1/trainings"]["post"]["responses"]["201"]["links"]
    targets = set()
    for link in links.values():
        assert link["parameters"] == {"job_id": "$response.body#/id"}
        pointer = link["operationRef"].removeprefix("#/paths/").replace("~1", "/")
        path, method = pointer.rsplit("/", 1)
        assert method in openapi["paths"][path], link
        targets.add((path, method))
    using_id = {(p, m) for p, item in openapi["paths"].items() for m in item if "{job_id}" in p}
    assert targets == using_id


def test_model_names_are_the_loaded_models_or_a_training_job(openapi: dict[str, Any]) -> None:
    body = openapi["components"]["schemas"]["PredictRequest"]["properties"]["model"]
    names, training, null = body["anyOf"]
    assert names["enum"] == ["untrained"]  # the test server's one model, by its file stem
    assert training["pattern"].startswith("^training:")
    assert null == {"type": "null"}
    query = openapi["paths"]["/api/v1/model"]["get"]["parameters"]
    assert next(p for p in query if p["name"] == "model")["schema"]["anyOf"][0] == names


def test_pixels_and_batches_state_their_bounds(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    pixels = schemas["PredictRequest"]["properties"]["pixels"]["anyOf"][0]
    assert (pixels["minItems"], pixels["maxItems"]) == (28, 28)
    assert (pixels["items"]["minItems"], pixels["items"]["maxItems"]) == (28, 28)
    assert pixels["items"]["items"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert schemas["BatchRequest"]["properties"]["images"]["maxItems"] == 256
    assert schemas["TrainingRequest"]["properties"]["architecture"]["enum"]


def test_predict_file_describes_its_edits_field_as_json(openapi: dict[str, Any]) -> None:
    media = openapi["paths"]["/api/v1/predict/file"]["post"]["requestBody"]["content"]
    form = media["multipart/form-data"]
    assert form["schema"]["properties"]["edits"]["$ref"] == "#/components/schemas/EditsIn"
    assert form["encoding"] == {"edits": {"contentType": "application/json"}}
