"""POST /api/v1/predict: label, probabilities, input, activations, pool masks and saliency,
each checked against an independent float64 network, the engine, or the contract's rules."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server import preprocess
from server.cnn import Sequential

PREDICT = "/api/v1/predict"
FORMATS = ["PNG", "JPEG", "WEBP", "BMP", "GIF"]
MIME = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "BMP": "bmp", "GIF": "gif"}
LOSSLESS = {"PNG": {}, "WEBP": {"lossless": True}, "BMP": {}, "GIF": {}}
FLOAT32_TOL = {"rtol": 1e-4, "atol": 1e-5}


def predict(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(PREDICT, json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def explained(client: TestClient, digit_pixels: np.ndarray) -> dict[str, Any]:
    """Everything, as lists, for the drawn 3."""
    return predict(client, pixels=digit_pixels.tolist(), activations=True, saliency=True)


@pytest.fixture(scope="module")
def explained_base64(client: TestClient, digit_pixels: np.ndarray) -> dict[str, Any]:
    """Everything, base64-packed, for the same digit."""
    return predict(
        client, pixels=digit_pixels.tolist(), activations=True, saliency=True, encoding="base64"
    )


# --- label and probabilities ---------------------------------------------------------------


def test_probabilities_are_ten_that_sum_to_one_and_label_is_their_argmax(
    explained: dict[str, Any],
) -> None:
    probabilities = np.asarray(explained["probabilities"])
    assert probabilities.shape == (10,)
    assert np.all(probabilities >= 0)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    assert explained["label"] == int(probabilities.argmax())


def test_probabilities_match_an_independent_float64_network(
    explained: dict[str, Any], reference: Any, digit_pixels: np.ndarray
) -> None:
    expected = reference.probabilities(digit_pixels)
    np.testing.assert_allclose(explained["probabilities"], expected, rtol=1e-4, atol=1e-6)
    assert explained["label"] == int(expected.argmax())


def test_probabilities_are_a_plain_list_even_with_base64(explained_base64: dict[str, Any]) -> None:
    assert isinstance(explained_base64["probabilities"], list)
    assert len(explained_base64["probabilities"]) == 10


def test_input_is_the_pixels_sent(explained: dict[str, Any], digit_pixels: np.ndarray) -> None:
    received = np.asarray(explained["input"], dtype=np.float32)
    assert received.shape == (28, 28)
    np.testing.assert_array_equal(received, digit_pixels.astype(np.float32))


def test_model_is_the_first_12_hex_of_the_weights_hash(
    client: TestClient, explained: dict[str, Any]
) -> None:
    sha256 = client.get("/api/v1/model").json()["weights_sha256"]
    assert explained["model"] == sha256[:12]


def test_timings_are_reported_per_stage(explained: dict[str, Any]) -> None:
    timings = explained["timings_ms"]
    assert set(timings) == {"decode", "preprocess", "forward", "total"}
    assert all(isinstance(v, int | float) and v >= 0 for v in timings.values())
    parts = timings["decode"] + timings["preprocess"] + timings["forward"]
    assert timings["total"] >= parts - 0.01  # rounding to microseconds


def test_plain_request_has_no_layers_saliency_or_target(
    client: TestClient, digit_pixels: np.ndarray, kit: Any
) -> None:
    body = predict(client, pixels=digit_pixels.tolist())
    assert set(body) == kit.PLAIN_ANSWER


def test_saliency_alone_has_no_layers(client: TestClient, digit_pixels: np.ndarray) -> None:
    body = predict(client, pixels=digit_pixels.tolist(), saliency=True)
    assert "layers" not in body
    assert body["target"] == body["label"]


def test_activations_alone_have_no_saliency(client: TestClient, digit_pixels: np.ndarray) -> None:
    body = predict(client, pixels=digit_pixels.tolist(), activations=True)
    assert "saliency" not in body
    assert "target" not in body
    assert len(body["layers"]) == 12


# --- activations ---------------------------------------------------------------------------


def test_layers_are_every_layer_in_model_order_then_softmax(
    explained: dict[str, Any], engine: Sequential
) -> None:
    names = [layer["name"] for layer in explained["layers"]]
    kinds = [layer["kind"] for layer in explained["layers"]]
    assert names == [layer.name for layer in engine.layers] + ["softmax"]
    assert kinds == [layer.kind for layer in engine.layers] + ["softmax"]


def test_layer_shapes_match_the_model_card_and_the_data(
    client: TestClient, explained: dict[str, Any]
) -> None:
    card = client.get("/api/v1/model").json()
    for row, layer in zip(card["layers"], explained["layers"], strict=True):
        assert layer["shape"] == row["output_shape"], layer["name"]
        assert list(np.asarray(layer["data"]).shape) == layer["shape"], layer["name"]


def test_activations_match_an_independent_float64_network(
    explained: dict[str, Any], reference: Any, digit_pixels: np.ndarray
) -> None:
    expected = reference.layers(digit_pixels)
    for layer in explained["layers"][:-1]:
        got = np.asarray(layer["data"])
        scale = float(np.abs(expected[layer["name"]]).max()) or 1.0
        np.testing.assert_allclose(
            got, expected[layer["name"]], rtol=1e-4, atol=1e-5 * scale, err_msg=layer["name"]
        )


def test_softmax_layer_is_last_and_equals_the_probabilities(explained: dict[str, Any]) -> None:
    last = explained["layers"][-1]
    assert (last["name"], last["kind"], last["shape"]) == ("softmax", "softmax", [10])
    np.testing.assert_allclose(last["data"], explained["probabilities"], rtol=1e-6, atol=1e-7)


def test_masks_only_on_pool_layers(explained: dict[str, Any]) -> None:
    with_mask = [layer["name"] for layer in explained["layers"] if "mask" in layer]
    assert with_mask == ["pool1", "pool2"]
    assert all(
        layer["kind"] == "maxpool2d" for layer in explained["layers"] if layer["name"] in with_mask
    )


@pytest.mark.parametrize("pool", ["pool1", "pool2"])
def test_mask_has_the_pool_inputs_shape_and_one_winner_per_window(
    explained: dict[str, Any], pool: str
) -> None:
    names = [layer["name"] for layer in explained["layers"]]
    index = names.index(pool)
    before, layer = explained["layers"][index - 1], explained["layers"][index]
    mask = np.asarray(layer["mask"])
    pooled = np.asarray(layer["data"])
    pool_input = np.asarray(before["data"])
    c, h, w = pool_input.shape
    assert list(mask.shape) == before["shape"] == [c, h, w]
    assert set(np.unique(mask)) <= {0, 1}
    windows = mask.reshape(c, h // 2, 2, w // 2, 2).sum(axis=(2, 4))  # (C, H/2, W/2)
    assert np.all(windows == 1)
    assert np.all(mask.sum(axis=(1, 2)) == (h // 2) * (w // 2))
    # each window's winner holds the value the pool output reports
    window_max = pool_input.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    np.testing.assert_array_equal(pooled, window_max)
    winners = (pool_input * mask).reshape(c, h // 2, 2, w // 2, 2).sum(axis=(2, 4))
    np.testing.assert_array_equal(winners, pooled)


# --- base64 encoding -----------------------------------------------------------------------


def test_base64_arrays_are_the_list_arrays_in_float16(
    explained: dict[str, Any], explained_base64: dict[str, Any], kit: Any
) -> None:
    pairs = [("input", explained["input"], explained_base64["input"])]
    pairs.append(("saliency", explained["saliency"], explained_base64["saliency"]))
    for listed, packed in zip(explained["layers"], explained_base64["layers"], strict=True):
        assert packed["shape"] == listed["shape"]
        pairs.append((listed["name"], listed["data"], packed["data"]))
    for name, listed_array, packed_array in pairs:
        assert packed_array["dtype"] == "float16", name
        decoded = kit.decode(packed_array)
        as_sent = np.asarray(listed_array, dtype=np.float32)
        assert decoded.shape == as_sent.shape, name
        np.testing.assert_array_equal(decoded, as_sent.astype(np.float16), err_msg=name)
        np.testing.assert_allclose(decoded, as_sent, rtol=1e-3, atol=6.2e-5, err_msg=name)


def test_base64_masks_are_uint8_and_equal_the_list_masks(
    explained: dict[str, Any], explained_base64: dict[str, Any], kit: Any
) -> None:
    for listed, packed in zip(explained["layers"], explained_base64["layers"], strict=True):
        if "mask" not in listed:
            assert "mask" not in packed
            continue
        assert packed["mask"]["dtype"] == "uint8"
        np.testing.assert_array_equal(kit.decode(packed["mask"]), np.asarray(listed["mask"]))


def test_base64_data_is_little_endian_c_order(explained_base64: dict[str, Any]) -> None:
    conv1 = explained_base64["layers"][0]["data"]
    raw = base64.b64decode(conv1["data"])
    first_channel = np.frombuffer(raw, dtype="<f2")[: 28 * 28].reshape(28, 28)
    big_endian = np.frombuffer(raw, dtype=">f2")[: 28 * 28]
    assert conv1["shape"] == [32, 28, 28]
    assert not np.array_equal(first_channel.ravel(), big_endian)
    assert np.isfinite(first_channel).all()


def test_same_answer_in_both_encodings(
    explained: dict[str, Any], explained_base64: dict[str, Any]
) -> None:
    assert explained["label"] == explained_base64["label"]
    assert explained["probabilities"] == explained_base64["probabilities"]
    assert explained["target"] == explained_base64["target"]


# --- uint8 encoding ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def explained_uint8(client: TestClient, digit_pixels: np.ndarray) -> dict[str, Any]:
    """Everything, quantised to bytes and bits, for the same digit."""
    return predict(
        client, pixels=digit_pixels.tolist(), activations=True, saliency=True, encoding="uint8"
    )


def float_arrays(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, array) for input, saliency and every layer's data, as the answer holds them."""
    pairs = [("input", body["input"]), ("saliency", body["saliency"])]
    return pairs + [(layer["name"], layer["data"]) for layer in body["layers"]]


def test_uint8_maps_round_trip_to_the_float32_trace_within_half_a_step(
    explained: dict[str, Any], explained_uint8: dict[str, Any], kit: Any
) -> None:
    listed = float_arrays(explained)
    for (name, exact), (packed_name, packed) in zip(
        listed, float_arrays(explained_uint8), strict=True
    ):
        assert name == packed_name
        exact = np.asarray(exact, dtype=np.float32).astype(np.float64)  # as the trace held it
        levels, values = kit.dequantize(packed)
        assert packed["shape"] == list(exact.shape), name
        low, high = exact.min(), exact.max()
        if low < 0 < high:  # 0 is a whole number of steps: a zeroed map reads exactly 0
            assert packed["scale"] == pytest.approx((high - low) / 254, rel=1e-12), name
            zero = -packed["offset"] / packed["scale"]
            assert zero == pytest.approx(round(zero), abs=1e-9), name
            np.testing.assert_array_equal(values[exact == 0], 0.0, err_msg=name)
            assert abs(packed["offset"] - low) <= packed["scale"] / 2 * (1 + 1e-9), name
        else:
            assert packed["offset"] == low, name
            assert packed["scale"] == pytest.approx((high - low) / 255, rel=1e-12), name
            if packed["scale"] > 0:
                assert (levels.min(), levels.max()) == (0, 255), name
        # round to nearest: at most half a step off, plus float32 rounding in the quantiser
        tolerance = packed["scale"] / 2 * (1 + 1e-5) + 1e-9
        np.testing.assert_array_less(np.abs(values - exact), tolerance, err_msg=name)


def test_uint8_masks_unpack_to_the_base64_masks(
    explained_base64: dict[str, Any], explained_uint8: dict[str, Any], kit: Any
) -> None:
    masks = 0
    for packed, bits in zip(explained_base64["layers"], explained_uint8["layers"], strict=True):
        assert ("mask" in packed) == ("mask" in bits), packed["name"]
        if "mask" in packed:
            np.testing.assert_array_equal(kit.unpack_bits(bits["mask"]), kit.decode(packed["mask"]))
            masks += 1
    assert masks == 2


def test_uint8_keeps_label_probabilities_and_target(
    explained: dict[str, Any], explained_uint8: dict[str, Any]
) -> None:
    assert explained_uint8["label"] == explained["label"]
    assert explained_uint8["probabilities"] == explained["probabilities"]  # still a list
    assert explained_uint8["target"] == explained["target"]


def test_uint8_constant_arrays_have_scale_zero(client: TestClient, kit: Any) -> None:
    blank = [[0.0] * 28 for _ in range(28)]
    body = predict(client, pixels=blank, activations=True, encoding="uint8")
    levels, values = kit.dequantize(body["input"])
    assert (body["input"]["scale"], body["input"]["offset"]) == (0.0, 0.0)
    assert not levels.any()
    assert not values.any()


def test_uint8_on_the_upload_route(client: TestClient, kit: Any, digit_png: bytes) -> None:
    files = {"file": ("digit.png", digit_png, "image/png")}
    response = client.post(f"{PREDICT}/file?activations=true&encoding=uint8", files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["input"]["dtype"] == "uint8"
    assert body["layers"][2]["mask"]["dtype"] == "bit"
    reference = predict(client, image=kit.b64(digit_png), activations=True, encoding="uint8")
    assert kit.without_timings(body) == kit.without_timings(reference)


# --- saliency ------------------------------------------------------------------------------


def finite_difference_saliency(
    reference: Any, image: np.ndarray, target: int, pixels: list[tuple[int, int]]
) -> np.ndarray:
    """d(logit[target])/d(pixel) * pixel by central differences on the float64 network."""
    eps = 1e-5
    values = []
    for y, x in pixels:
        up, down = image.copy(), image.copy()
        up[y, x] += eps
        down[y, x] -= eps
        slope = (reference.logits(up)[target] - reference.logits(down)[target]) / (2 * eps)
        values.append(slope * image[y, x])
    return np.asarray(values)


def strongest_pixels(saliency: np.ndarray, count: int = 6) -> list[tuple[int, int]]:
    order = np.argsort(np.abs(saliency).ravel())[::-1][:count]
    return [(int(i) // 28, int(i) % 28) for i in order]


def test_saliency_is_28x28_and_zero_where_the_input_is_zero(explained: dict[str, Any]) -> None:
    saliency = np.asarray(explained["saliency"])
    image = np.asarray(explained["input"])
    assert saliency.shape == (28, 28)
    assert np.all(saliency[image == 0] == 0)  # gradient times input
    assert np.abs(saliency).max() > 0


def test_target_defaults_to_the_predicted_label(explained: dict[str, Any]) -> None:
    assert explained["target"] == explained["label"]


def test_saliency_matches_central_differences(
    explained: dict[str, Any], reference: Any, digit_pixels: np.ndarray
) -> None:
    saliency = np.asarray(explained["saliency"])
    pixels = strongest_pixels(saliency)
    expected = finite_difference_saliency(reference, digit_pixels, explained["target"], pixels)
    got = np.asarray([saliency[y, x] for y, x in pixels])
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-4 * np.abs(expected).max())


def test_saliency_matches_torch_autograd(
    explained: dict[str, Any], reference: Any, digit_pixels: np.ndarray
) -> None:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    p = {k: torch.from_numpy(v) for k, v in reference.params.items()}  # float64

    def conv(x: Any, name: str) -> Any:
        weight = p[f"{name}.weight"].permute(3, 2, 0, 1)  # (kh, kw, C, F) -> (F, C, kh, kw)
        return functional.conv2d(x, weight, p[f"{name}.bias"], padding=1)

    x = torch.tensor(digit_pixels[None, None], dtype=torch.float64, requires_grad=True)
    h = functional.max_pool2d(torch.relu(conv(x, "conv1")), 2)
    h = functional.max_pool2d(torch.relu(conv(h, "conv2")), 2)
    h = h.permute(0, 2, 3, 1).reshape(1, -1)  # the engine flattens (H, W, C)
    h = torch.relu(h @ p["fc1.weight"] + p["fc1.bias"])
    logits = h @ p["fc2.weight"] + p["fc2.bias"]
    logits[0, explained["target"]].backward()
    expected = (x.grad * x).detach().numpy()[0, 0]
    saliency = np.asarray(explained["saliency"])
    np.testing.assert_allclose(saliency, expected, rtol=1e-3, atol=1e-5 * np.abs(expected).max())


def test_target_chooses_the_class_the_saliency_explains(
    client: TestClient, reference: Any, digit_pixels: np.ndarray
) -> None:
    maps = {}
    for target in (0, 8):
        body = predict(client, pixels=digit_pixels.tolist(), saliency=True, target=target)
        assert body["target"] == target
        maps[target] = np.asarray(body["saliency"])
        pixels = strongest_pixels(maps[target])
        expected = finite_difference_saliency(reference, digit_pixels, target, pixels)
        got = np.asarray([maps[target][y, x] for y, x in pixels])
        np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-4 * np.abs(expected).max())
    assert not np.allclose(maps[0], maps[8])


def test_target_does_not_change_the_prediction(
    client: TestClient, explained: dict[str, Any], digit_pixels: np.ndarray
) -> None:
    body = predict(client, pixels=digit_pixels.tolist(), saliency=True, target=5)
    assert body["label"] == explained["label"]
    assert body["probabilities"] == explained["probabilities"]


# --- images --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def png_answer(client: TestClient, digit_png: bytes, kit: Any) -> dict[str, Any]:
    return predict(client, image=kit.b64(digit_png), activations=True)


def test_png_input_looks_like_an_mnist_digit(png_answer: dict[str, Any]) -> None:
    field = np.asarray(png_answer["input"])
    assert field.shape == (28, 28)
    assert field.min() >= 0.0
    assert field.max() == pytest.approx(1.0)
    assert np.median(field) == 0.0  # white ink on black
    rows = np.flatnonzero(field.any(axis=1))
    cols = np.flatnonzero(field.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20  # longer side 20 px, like MNIST
    total = field.sum()
    centre_y = (field.sum(axis=1) @ np.arange(28)) / total
    centre_x = (field.sum(axis=0) @ np.arange(28)) / total
    assert abs(centre_y - 13.5) <= 1.0
    assert abs(centre_x - 13.5) <= 1.0


def test_image_answer_is_the_network_on_the_preprocessed_input(
    png_answer: dict[str, Any], reference: Any
) -> None:
    expected = reference.probabilities(np.asarray(png_answer["input"], dtype=np.float32))
    np.testing.assert_allclose(png_answer["probabilities"], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_accepted_format_is_read(
    client: TestClient, kit: Any, fmt: str, digit_png: bytes
) -> None:
    img = kit.draw_digit(7)
    data = kit.image_bytes(img, fmt, **LOSSLESS.get(fmt, {}))
    body = predict(client, image=kit.b64(data))
    field = np.asarray(body["input"], dtype=np.float32)
    np.testing.assert_array_equal(field, preprocess.to_mnist(data))
    if fmt in LOSSLESS:
        np.testing.assert_array_equal(field, preprocess.to_mnist(digit_png))


@pytest.mark.parametrize("fmt", FORMATS)
def test_data_url_and_plain_base64_give_the_same_answer(
    client: TestClient, kit: Any, fmt: str
) -> None:
    data = kit.image_bytes(kit.draw_digit(4), fmt)
    plain = predict(client, image=kit.b64(data), activations=True)
    url = predict(client, image=kit.data_url(data, f"image/{MIME[fmt]}"), activations=True)
    assert kit.without_timings(plain) == kit.without_timings(url)


def test_base64_with_line_breaks_is_accepted(
    client: TestClient, kit: Any, digit_png: bytes
) -> None:
    wrapped = base64.encodebytes(digit_png).decode("ascii")  # 76-character MIME lines
    assert "\n" in wrapped
    plain = predict(client, image=kit.b64(digit_png))
    assert kit.without_timings(predict(client, image=wrapped)) == kit.without_timings(plain)


def test_light_ink_on_dark_gives_the_same_input_as_dark_on_light(
    client: TestClient, kit: Any
) -> None:
    dark_on_light = predict(client, image=kit.png_b64(kit.draw_digit(2, ink=0, paper=255)))
    light_on_dark = predict(client, image=kit.png_b64(kit.draw_digit(2, ink=255, paper=0)))
    # equal up to float32 rounding of 1 - gray
    np.testing.assert_allclose(dark_on_light["input"], light_on_dark["input"], rtol=0, atol=1e-6)


def test_image_with_every_option_in_base64(client: TestClient, kit: Any, digit_png: bytes) -> None:
    body = predict(
        client,
        image=kit.b64(digit_png),
        activations=True,
        saliency=True,
        target=1,
        encoding="base64",
    )
    assert body["target"] == 1
    assert body["input"]["shape"] == [28, 28]
    assert body["saliency"]["shape"] == [28, 28]
    assert [layer["name"] for layer in body["layers"]][-1] == "softmax"


def test_repeated_requests_give_identical_answers(
    client: TestClient, kit: Any, digit_png: bytes
) -> None:
    first = predict(client, image=kit.b64(digit_png), activations=True, saliency=True)
    second = predict(client, image=kit.b64(digit_png), activations=True, saliency=True)
    assert kit.without_timings(first) == kit.without_timings(second)


# --- compression ---------------------------------------------------------------------------


def gzip_sizes(client: TestClient, body: dict[str, Any], kit: Any) -> tuple[int, int]:
    """(bytes on the wire gzip-encoded, bytes uncompressed) of one predict answer."""
    zipped = client.post(PREDICT, json=body, headers={"Accept-Encoding": "gzip"})
    plain = client.post(PREDICT, json=body, headers={"Accept-Encoding": "identity"})
    assert zipped.status_code == plain.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    on_the_wire = zipped.num_bytes_downloaded  # compressed bytes as received
    uncompressed = len(zipped.content)  # httpx decoded them
    assert abs(plain.num_bytes_downloaded - uncompressed) < 64  # only the timings differ
    assert kit.without_timings(zipped.json()) == kit.without_timings(plain.json())
    return on_the_wire, uncompressed


def everything_base64(image: str) -> dict[str, Any]:
    return {"image": image, "activations": True, "saliency": True, "encoding": "base64"}


@pytest.mark.parametrize("model", ["untrained", "trained"])
def test_gzip_shrinks_base64_activations_under_120_kb(
    request: pytest.FixtureRequest,
    digit_png: bytes,
    kit: Any,
    record_property: Any,
    model: str,
) -> None:
    client = request.getfixturevalue("client" if model == "untrained" else "trained_client")
    on_the_wire, uncompressed = gzip_sizes(client, everything_base64(kit.b64(digit_png)), kit)
    record_property(f"predict_base64_bytes_gzip_{model}", on_the_wire)
    record_property(f"predict_base64_bytes_raw_{model}", uncompressed)
    print(
        f"\n{model} model, activations+saliency, base64: {uncompressed} B raw, {on_the_wire} B gzip"
    )
    assert on_the_wire <= 120 * 1024, f"{on_the_wire} B gzip-encoded ({uncompressed} B raw)"
    assert on_the_wire < uncompressed / 2


def test_uint8_activations_of_a_drawn_digit_are_under_40_kb_zstd(
    trained_client: TestClient, digit_png: bytes, kit: Any, record_property: Any
) -> None:
    body = {"image": kit.b64(digit_png), "activations": True, "encoding": "uint8"}
    headers = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # a browser's
    with trained_client.stream("POST", PREDICT, json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "zstd"
        on_the_wire = len(b"".join(response.iter_raw()))
    record_property("predict_uint8_bytes_zstd", on_the_wire)
    assert on_the_wire <= 40 * 1024, f"{on_the_wire} B zstd-encoded"


def test_uint8_a_switched_off_conv_map_reads_exactly_zero(
    client: TestClient, kit: Any, digit_pixels: np.ndarray
) -> None:
    edits = {"ablate": [{"layer": "conv1", "channels": [4]}]}
    body = predict(
        client, pixels=digit_pixels.tolist(), activations=True, encoding="uint8", edits=edits
    )
    conv1 = next(layer for layer in body["layers"] if layer["name"] == "conv1")
    _, values = kit.dequantize(conv1["data"])
    assert values.min() < 0 < values.max()  # the map spans 0: min is not the offset of 0
    np.testing.assert_array_equal(values[4], 0.0)
    assert np.count_nonzero(values[3]) > 0
