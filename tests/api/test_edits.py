"""POST /api/v1/predict with `edits` and `saliency_method`: answers checked against the float64
reference network with its weights edited by hand, bad edits refused in words, edits that never
leak between concurrent requests, and the OpenAPI schema of the new fields."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient

PREDICT = "/api/v1/predict"
FILE = "/api/v1/predict/file"
THREADS = 16
TIMEOUT_S = 120  # a bound on the whole run, not a synchronisation device

KERNEL = [[[0.5, -1.0, 0.25], [1.5, 0.0, -0.5], [0.75, 1.0, -2.0]]]  # conv1 filter, [1, 3, 3]
EDITS: dict[str, Any] = {
    "ablate": [{"layer": "conv1", "channels": [3, 7]}, {"layer": "fc1", "channels": [12, 12]}],
    "kernels": [{"layer": "conv1", "channel": 5, "weight": KERNEL, "bias": 0.3}],
}


def edited_reference(weights_path: Path, reference_cls: type) -> Any:
    """A fresh ReferenceCNN (float64, np.load) with EDITS made by hand on its weights."""
    ref = reference_cls(weights_path)
    p = ref.params
    p["conv1.weight"][:, :, :, 5] = np.asarray(KERNEL).transpose(1, 2, 0)  # -> (kh, kw, C_in)
    p["conv1.bias"][5] = 0.3
    p["conv1.weight"][..., [3, 7]] = 0
    p["conv1.bias"][[3, 7]] = 0
    p["fc1.weight"][:, 12] = 0
    p["fc1.bias"][12] = 0
    return ref


def post(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(PREDICT, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_an_edited_answer_equals_the_hand_edited_reference(
    client: TestClient, digit_pixels: np.ndarray, weights_path: Path, reference: Any, kit: Any
) -> None:
    pixels = digit_pixels.tolist()
    body = post(client, pixels=pixels, activations=True, edits=EDITS)
    ref = edited_reference(weights_path, type(reference))
    expected = ref.layers(digit_pixels)
    layers = {layer["name"]: kit.decode(layer["data"]) for layer in body["layers"]}
    for name, value in expected.items():
        np.testing.assert_allclose(layers[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    for name in ("conv1", "relu1", "pool1"):
        assert np.all(layers[name][[3, 7]] == 0), name
    assert layers["fc1"][12] == layers["relu3"][12] == 0
    np.testing.assert_allclose(body["probabilities"], ref.probabilities(digit_pixels), atol=1e-6)
    # the baseline is the unedited network: the reference as loaded, and the plain answer
    plain = post(client, pixels=pixels)
    assert body["baseline"] == {"label": plain["label"], "probabilities": plain["probabilities"]}
    np.testing.assert_allclose(
        body["baseline"]["probabilities"], reference.probabilities(digit_pixels), atol=1e-6
    )
    assert np.abs(np.subtract(body["probabilities"], plain["probabilities"])).max() > 1e-4


def test_without_edits_there_is_no_baseline_and_empty_edits_change_nothing(
    client: TestClient, digit_pixels: np.ndarray
) -> None:
    plain = post(client, pixels=digit_pixels.tolist())
    assert "baseline" not in plain
    empty = post(client, pixels=digit_pixels.tolist(), edits={})
    assert empty["probabilities"] == empty["baseline"]["probabilities"] == plain["probabilities"]


def test_saliency_with_edits_explains_the_edited_network(
    client: TestClient, digit_pixels: np.ndarray, kit: Any
) -> None:
    """The map follows the edit; an edit that silences conv1 (so the input no longer matters)
    makes every map 0."""
    pixels = digit_pixels.tolist()
    plain = post(client, pixels=pixels, saliency=True, target=3)
    edited = post(client, pixels=pixels, saliency=True, target=3, edits=EDITS)
    assert not np.allclose(kit.decode(plain["saliency"]), kit.decode(edited["saliency"]))
    silent = {"ablate": [{"layer": "conv1", "channels": list(range(32))}]}
    for method in ("gradient", "occlusion"):
        body = post(client, pixels=pixels, saliency=True, saliency_method=method, edits=silent)
        np.testing.assert_allclose(kit.decode(body["saliency"]), 0, atol=1e-7, err_msg=method)


def test_occlusion_equals_single_passes_of_the_reference(
    client: TestClient, digit_pixels: np.ndarray, reference: Any, kit: Any
) -> None:
    """4x4 patches of 0 every 2 px, each pixel the mean drop of p(target) over its patches."""
    body = post(client, pixels=digit_pixels.tolist(), saliency=True, saliency_method="occlusion")
    target = body["target"]
    assert target == body["label"]
    base = reference.probabilities(digit_pixels)[target]
    total, count = np.zeros((28, 28)), np.zeros((28, 28))
    for y in range(0, 25, 2):
        for x in range(0, 25, 2):
            covered = digit_pixels.copy()
            covered[y : y + 4, x : x + 4] = 0.0
            total[y : y + 4, x : x + 4] += base - reference.probabilities(covered)[target]
            count[y : y + 4, x : x + 4] += 1
    np.testing.assert_allclose(kit.decode(body["saliency"]), total / count, atol=1e-5)


def test_the_upload_route_takes_edits_as_a_form_field(
    client: TestClient, digit_png: bytes, kit: Any
) -> None:
    files = {"file": ("digit.png", digit_png, "image/png")}
    query = "?activations=true&saliency=true&saliency_method=occlusion"
    by_file = client.post(FILE + query, files=files, data={"edits": json.dumps(EDITS)})
    assert by_file.status_code == 200, by_file.text
    by_json = post(
        client,
        image=kit.b64(digit_png),
        activations=True,
        saliency=True,
        saliency_method="occlusion",
        edits=EDITS,
    )
    assert kit.without_timings(by_file.json()) == kit.without_timings(by_json)
    assert "baseline" in by_json


# --- bad edits -------------------------------------------------------------------------------

K = [[[0.0] * 3] * 3]
BAD_EDITS = [
    ({"ablate": [{"layer": "conv9", "channels": [1]}]}, ["conv9", "layers are", "conv1", "fc2"]),
    ({"ablate": [{"layer": "conv1", "channels": [32]}]}, ["channel 32", "out of range", "0 to 31"]),
    ({"ablate": [{"layer": "fc2", "channels": [-1]}]}, ["unit -1", "out of range"]),
    ({"ablate": [{"layer": "flatten", "channels": list(range(257))}]}, ["257", "at most 256"]),
    ({"kernels": [{"layer": "fc1", "channel": 0, "weight": K}]}, ["conv layers only", "dense"]),
    ({"kernels": [{"layer": "conv1", "channel": 40, "weight": K}]}, ["filter 40", "out of range"]),
    ({"kernels": [{"layer": "conv2", "channel": 0, "weight": K}]}, ["shape [1, 3, 3]", "[32, 3"]),
    ({"kernels": [{"layer": "conv1", "channel": 0, "weight": [[[1]]]}]}, ["shape [1, 1, 1]"]),
    ({"kernels": [{"layer": "conv1", "channel": 0, "weight": [[1, 2]]}]}, ["weight", "list"]),
    ({"ablate": [{"layer": "conv1"}]}, ["channels", "required"]),
    ({"ablate": [{"layer": "conv1", "channels": [1], "mode": "x"}]}, ["mode", "not permitted"]),
]


@pytest.mark.parametrize(("edits", "words"), BAD_EDITS)
def test_bad_edits_get_422_in_words(
    client: TestClient, digit_pixels: np.ndarray, kit: Any, edits: Any, words: list[str]
) -> None:
    response = client.post(PREDICT, json={"pixels": digit_pixels.tolist(), "edits": edits})
    kit.assert_error(response, 422, "edits", *words)


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("NaN", ["nan", "finite"]),
        ("-Infinity", ["-inf", "finite"]),
        ("1e999", ["inf"]),
        ("2e3", ["2000", "1000"]),
    ],
)
def test_non_finite_or_huge_kernel_numbers_get_422(
    client: TestClient, digit_pixels: np.ndarray, kit: Any, number: str, words: list[str]
) -> None:
    """Python's JSON reader takes NaN, Infinity and 1e999 (inf): the edit check must not."""
    kernel = f"[[[0, 0, 0], [0, {number}, 0], [0, 0, 0]]]"
    text = (
        f'{{"pixels": {json.dumps(digit_pixels.tolist())}, "edits": {{"kernels": '
        f'[{{"layer": "conv1", "channel": 0, "weight": {kernel}}}]}}}}'
    )
    response = client.post(PREDICT, content=text, headers={"content-type": "application/json"})
    detail = kit.assert_error(response, 422, "edits.kernels[0].weight[0][1][1]", *words)
    assert "1000" in detail


NAN_KERNEL = "[[[0, 0, 0], [0, NaN, 0], [0, 0, 0]]]"  # JSON as Python reads it, not strict JSON


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("{not json", ["edits", "not valid json"]),
        ("[1, 2]", ["edits", "dictionary"]),
        ('{"ablate": [{"layer": "pool7", "channels": [0]}]}', ["pool7", "layers are"]),
        ('{"kernels": [{"layer": "conv1", "channel": 0, "weight": ' + NAN_KERNEL + "}]}", ["nan"]),
    ],
)
def test_bad_edits_on_the_upload_route_get_422_in_words(
    client: TestClient, digit_png: bytes, kit: Any, field: str, words: list[str]
) -> None:
    files = {"file": ("digit.png", digit_png, "image/png")}
    kit.assert_error(client.post(FILE, files=files, data={"edits": field}), 422, *words)


def test_an_unknown_saliency_method_gets_422(
    client: TestClient, digit_pixels: np.ndarray, kit: Any
) -> None:
    body = {"pixels": digit_pixels.tolist(), "saliency": True, "saliency_method": "lime"}
    kit.assert_error(client.post(PREDICT, json=body), 422, "saliency_method", "occlusion")


# --- concurrency -----------------------------------------------------------------------------


def thread_body(index: int, pixels: list[list[float]]) -> dict[str, Any]:
    """Even threads: a different edit each (and occlusion for every fourth); odd: none."""
    body: dict[str, Any] = {"pixels": pixels, "activations": True, "saliency": True}
    if index % 2 == 0:
        kernel = (np.full((1, 3, 3), 0.1 * index) - 0.4).tolist()
        body["edits"] = {
            "ablate": [{"layer": "conv2", "channels": [index, index + 1]}],
            "kernels": [{"layer": "conv1", "channel": index, "weight": kernel, "bias": index / 10}],
        }
    if index % 4 == 0:
        body["saliency_method"] = "occlusion"
    return body


def test_concurrent_requests_never_see_each_others_edits(
    client: TestClient, digit_pixels: np.ndarray, kit: Any
) -> None:
    pixels = digit_pixels.tolist()
    bodies = [thread_body(i, pixels) for i in range(THREADS)]
    serial = [kit.without_timings(post(client, **body)) for body in bodies]
    plain = serial[1]
    for index, alone in enumerate(serial):  # edits take effect, and only where sent
        assert ("baseline" in alone) == (index % 2 == 0), index
        if index % 2:
            assert alone == plain, index
        else:
            assert alone["probabilities"] != plain["probabilities"], index
            assert alone["baseline"]["probabilities"] == plain["probabilities"], index

    barrier = threading.Barrier(THREADS, timeout=TIMEOUT_S)

    def worker(index: int) -> dict[str, Any]:
        barrier.wait()  # all sixteen post at the same moment
        return kit.without_timings(post(client, **bodies[index]))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(worker, i) for i in range(THREADS)]
        together = [future.result(timeout=TIMEOUT_S) for future in futures]
    for index, (alone, concurrent) in enumerate(zip(serial, together, strict=True)):
        assert concurrent == alone, index


# --- the schema ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/openapi.json").json())


def validator_for(openapi: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema.Draft202012Validator({**schema, "components": openapi["components"]})


@pytest.mark.parametrize("encoding", ["list", "base64"])
@pytest.mark.parametrize("method", ["gradient", "occlusion"])
def test_edited_answers_match_the_documented_schema(
    client: TestClient,
    openapi: dict[str, Any],
    digit_pixels: np.ndarray,
    encoding: str,
    method: str,
) -> None:
    request = {
        "pixels": digit_pixels.tolist(),
        "activations": True,
        "saliency": True,
        "saliency_method": method,
        "encoding": encoding,
        "edits": EDITS,
    }
    operation = openapi["paths"][PREDICT]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    validator_for(openapi, request_schema).validate(request)
    response = client.post(PREDICT, json=request)
    assert response.status_code == 200, response.text
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator_for(openapi, schema).validate(response.json())
    baseline = openapi["components"]["schemas"]["Baseline"]
    assert set(baseline["required"]) == {"label", "probabilities"}
    assert "baseline" in response.json()


def test_the_request_schema_documents_edits_and_refuses_strays(
    openapi: dict[str, Any], digit_pixels: np.ndarray
) -> None:
    request_schema = openapi["paths"][PREDICT]["post"]["requestBody"]["content"]
    validator = validator_for(openapi, request_schema["application/json"]["schema"])
    good = {"pixels": digit_pixels.tolist(), "edits": EDITS}
    validator.validate(good)
    for stray in ({"ablate": [{"layer": "conv1", "channels": [1], "x": 1}]}, {"scale": 2}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate({**good, "edits": stray})
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**good, "saliency_method": "lime"})
    form = openapi["paths"][FILE]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["properties"]["edits"]["$ref"] == "#/components/schemas/EditsIn"


def test_predict_edits_error_matches_its_schema(
    client: TestClient, digit_pixels: np.ndarray, validate: Callable[..., None]
) -> None:
    body = {"pixels": digit_pixels.tolist(), "edits": BAD_EDITS[0][0]}
    response = client.post(PREDICT, json=body)
    assert response.status_code == 422
    validate(PREDICT, "post", response)


@pytest.fixture(scope="module")
def validate(openapi: dict[str, Any]) -> Callable[..., None]:
    def check(path: str, method: str, response: Any) -> None:
        responses = openapi["paths"][path][method]["responses"]
        schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
        validator_for(openapi, schema).validate(response.json())

    return check
