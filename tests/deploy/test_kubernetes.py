"""The Kubernetes manifest parses and wires the probes, ports and autoscaler together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the dev extra")

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "convscope.yaml"


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def container(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Deployment's one container."""
    (only,) = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.fixture(scope="module")
def env(container: dict[str, Any]) -> dict[str, str | None]:
    """The container's environment variables by name."""
    return {item["name"]: item.get("value") for item in container["env"]}


def test_every_document_has_the_basics(documents: dict[str, dict[str, Any]]) -> None:
    assert set(documents) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    for doc in documents.values():
        assert doc["apiVersion"]
        assert doc["metadata"]["name"] == "convscope"


def test_probes_hit_healthz_on_the_served_port(
    documents: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_service_and_autoscaler_point_at_the_deployment(
    documents: dict[str, dict[str, Any]],
) -> None:
    deployment = documents["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert documents["Service"]["spec"]["selector"] == labels
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    target = documents["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    spec = documents["HorizontalPodAutoscaler"]["spec"]
    assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]


def test_pods_invite_prometheus_to_scrape_metrics(
    documents: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    annotations = documents["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    ports = {p["containerPort"] for p in container["ports"]}
    assert annotations["prometheus.io/scrape"] == "true"  # a string: annotations are strings
    assert int(annotations["prometheus.io/port"]) in ports
    assert annotations["prometheus.io/path"] == "/metrics"
    assert all(isinstance(value, str) for value in annotations.values())


def test_logs_are_json_and_tmp_is_writable(
    documents: dict[str, dict[str, Any]], container: dict[str, Any], env: dict[str, str | None]
) -> None:
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    assert env["CONVSCOPE_LOG_FORMAT"] == "json"
    # the root filesystem is read-only, so several workers' metrics files need a volume
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_training_is_off_or_each_client_stays_with_its_pod(
    documents: dict[str, dict[str, Any]], env: dict[str, str | None]
) -> None:
    """A job lives in one pod: with replicas, training needs session affinity or stays off."""
    affinity = documents["Service"]["spec"].get("sessionAffinity")
    assert env.get("CONVSCOPE_TRAINING") == "false" or affinity == "ClientIP"


def test_the_compute_process_is_on_only_with_a_cpu_for_it(
    container: dict[str, Any], env: dict[str, str | None]
) -> None:
    """The pod's CPU limit, not the node's CPU count the server sees, decides whether a compute
    process beside the server pays: it needs a second CPU."""
    limit = str(container["resources"]["limits"]["cpu"])
    cpus = int(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
    assert env.get("CONVSCOPE_COMPUTE_PROCESS") == ("true" if cpus >= 2 else "false")
