"""The Kubernetes manifests in deploy/k8s/: web replicas, training workers and their broker fit
together (names, labels, ports, the Secret, MNIST), pass a strict schema check, and keep what a
deployment relies on (probes, metrics, non-root containers, a broker only ConvScope reaches)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the dev extra")

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
WEB, WORKER, BROKER = "convscope", "convscope-worker", "valkey"
# Kubernetes releases the strict check covers: an older one still common in clusters, and the
# newest the installed schemas know
SCHEMA_VERSIONS = ("1.30", "latest")

Doc = dict[str, Any]


def load_documents() -> list[Doc]:
    """Every YAML document in deploy/k8s/, as `kubectl apply -f deploy/k8s/` reads them."""
    paths = sorted([*K8S.glob("*.yaml"), *K8S.glob("*.yml")])
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def documents() -> dict[tuple[str, str], Doc]:
    """The documents by (kind, name)."""
    by_key: dict[tuple[str, str], Doc] = {}
    for doc in load_documents():
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in by_key, f"{key} is defined twice in {K8S}"
        by_key[key] = doc
    return by_key


def deployment(documents: dict[tuple[str, str], Doc], name: str) -> Doc:
    return documents[("Deployment", name)]


def pod(documents: dict[tuple[str, str], Doc], name: str) -> Doc:
    """A Deployment's pod spec."""
    return dict(deployment(documents, name)["spec"]["template"]["spec"])


def only_container(documents: dict[tuple[str, str], Doc], name: str) -> Doc:
    (container,) = pod(documents, name)["containers"]
    return dict(container)


def env_items(container: Doc) -> list[Doc]:
    return list(container.get("env", []))


def env_values(container: Doc) -> dict[str, str | None]:
    """The container's plain environment values by name (None for those from a Secret)."""
    return {item["name"]: item.get("value") for item in env_items(container)}


def secret_placeholder(ref: Doc) -> str:
    """What stands for a value read from a Secret: URL-safe, like the hex password itself."""
    return f"secret.{ref['name']}.{ref['key']}"


def expand(text: str, env: dict[str, str]) -> str:
    """`$(NAME)` replaced as Kubernetes does, from the variables given; an undefined one fails
    (Kubernetes would leave it as it is)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"$({name}) in {text!r} is not defined before it"
        return env[name]

    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", substitute, text)


def environment(container: Doc) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: in order, each value expanded from
    the variables before it; a value from a Secret is its placeholder."""
    env: dict[str, str] = {}
    for item in env_items(container):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = secret_placeholder(ref) if ref else expand(item["value"], env)
    return env


def option(command: list[str], flag: str) -> str:
    """The value after `flag` in a command line."""
    assert flag in command, f"{flag} is not in {command}"
    return command[command.index(flag) + 1]


def cpus(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(quantity: str, units: dict[str, int]) -> int:
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity)
    assert match, f"not a memory quantity: {quantity!r}"
    assert match.group(2) in units, f"no such unit in {quantity!r}"
    return int(match.group(1)) * units[match.group(2)]


def kubernetes_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity: 512Mi, 1Gi, 256M."""
    units = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    return memory_bytes(quantity, units)


def valkey_bytes(quantity: str) -> int:
    """Valkey's memory units, as its config reads them: 1gb is 1024**3, 1g is 1000**3."""
    units = {"": 1, "b": 1, "k": 10**3, "kb": 2**10, "m": 10**6, "mb": 2**20}
    return memory_bytes(quantity.lower(), units | {"g": 10**9, "gb": 2**30})


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector picks pods with these labels (an empty one picks all)."""
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def pod_labels(documents: dict[tuple[str, str], Doc], name: str) -> dict[str, str]:
    return dict(deployment(documents, name)["spec"]["template"]["metadata"]["labels"])


# --- the whole directory ---------------------------------------------------------------------


def test_every_document_has_the_basics(documents: dict[tuple[str, str], Doc]) -> None:
    assert set(documents) >= {
        ("Deployment", WEB),
        ("Service", WEB),
        ("HorizontalPodAutoscaler", WEB),
        ("Deployment", WORKER),
        ("HorizontalPodAutoscaler", WORKER),
        ("Deployment", BROKER),
        ("Service", BROKER),
        ("NetworkPolicy", BROKER),
    }
    for (kind, name), doc in documents.items():
        assert doc["apiVersion"], (kind, name)
        if kind == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"] == labels, name


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_document_passes_a_strict_schema_check(version: str) -> None:
    """Kubernetes' own OpenAPI schemas, strict: an unknown or misspelt field fails, as do wrong
    types (a port as a string, a label as a number)."""
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is in the dev extra"
    )
    wanted = kubernetes_validate.latest_version() if version == "latest" else version
    for doc in load_documents():
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, wanted, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name} fails Kubernetes {wanted}'s schema: {error.message}")


def test_services_and_autoscalers_point_at_deployments(
    documents: dict[tuple[str, str], Doc],
) -> None:
    for (kind, name), doc in documents.items():
        if kind == "Service":
            (target,) = [
                d
                for (k, _), d in documents.items()
                if k == "Deployment"
                and selects(
                    {"matchLabels": doc["spec"]["selector"]},
                    d["spec"]["template"]["metadata"]["labels"],
                )
            ]
            ports = {
                p["name"]
                for c in target["spec"]["template"]["spec"]["containers"]
                for p in c["ports"]
            }
            assert {p["targetPort"] for p in doc["spec"]["ports"]} <= ports, name
        if kind == "HorizontalPodAutoscaler":
            ref = doc["spec"]["scaleTargetRef"]
            assert ("Deployment", ref["name"]) in documents, name
            assert ref["kind"] == "Deployment", name
            assert 1 <= doc["spec"]["minReplicas"] <= doc["spec"]["maxReplicas"], name


def test_every_container_runs_as_non_root_and_restricted(
    documents: dict[tuple[str, str], Doc],
) -> None:
    """The `restricted` Pod Security Standard's demands, and a read-only root filesystem."""
    for (kind, name), doc in documents.items():
        if kind != "Deployment":
            continue
        spec = doc["spec"]["template"]["spec"]
        pod_context = spec.get("securityContext", {})
        assert pod_context.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            where = f"{name}/{container['name']}"
            context = {**pod_context, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, where
            assert context.get("runAsUser", 1) != 0, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert context.get("readOnlyRootFilesystem") is True, where


def test_one_password_from_a_secret_the_user_makes(documents: dict[tuple[str, str], Doc]) -> None:
    """No Secret is shipped, so `kubectl apply -f deploy/k8s/` never replaces the user's
    password with a placeholder; every pod reads the same Secret and key."""
    assert not [name for kind, name in documents if kind == "Secret"]
    refs = {
        f"{item['valueFrom']['secretKeyRef']['name']}/{item['valueFrom']['secretKeyRef']['key']}"
        for (kind, _), doc in documents.items()
        if kind == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
        for item in env_items(container)
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert len(refs) == 1, refs


# --- the broker --------------------------------------------------------------------------------


def test_the_broker_keeps_nothing_on_disk_and_asks_for_the_password(
    documents: dict[tuple[str, str], Doc],
) -> None:
    broker = only_container(documents, BROKER)
    command = [*broker.get("command", []), *broker.get("args", [])]
    assert command[0] in {"valkey-server", "redis-server"}
    assert option(command, "--save") == ""
    assert option(command, "--appendonly") == "no"
    volumes = pod(documents, BROKER).get("volumes", [])
    assert all("emptyDir" in volume for volume in volumes), "no persistent volume"
    password = expand(option(command, "--requirepass"), environment(broker))
    assert password.startswith("secret."), "the password comes from a Secret"
    spec = deployment(documents, BROKER)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate", "never two brokers, each with half the jobs"


def test_the_broker_refuses_writes_when_full_inside_its_memory_limit(
    documents: dict[tuple[str, str], Doc],
) -> None:
    """The queue and a waiting job's hash must never be evicted (see broker.yaml), and the
    container must not be killed for memory before Valkey refuses writes."""
    broker = only_container(documents, BROKER)
    command = [*broker.get("command", []), *broker.get("args", [])]
    assert option(command, "--maxmemory-policy") == "noeviction"
    maxmemory = valkey_bytes(option(command, "--maxmemory"))
    limit = kubernetes_bytes(broker["resources"]["limits"]["memory"])
    assert 0 < maxmemory <= 0.85 * limit


def test_the_broker_probes_ping_with_the_password(documents: dict[tuple[str, str], Doc]) -> None:
    broker = only_container(documents, BROKER)
    for probe in ("readinessProbe", "livenessProbe"):
        script = broker[probe]["exec"]["command"][-1]
        assert "ping" in script
        assert '-a "$VALKEY_PASSWORD"' in script, "a probe without the password gets NOAUTH"
    assert "VALKEY_PASSWORD" in env_values(broker)


def test_only_convscope_pods_reach_the_broker(documents: dict[tuple[str, str], Doc]) -> None:
    policy = documents[("NetworkPolicy", BROKER)]["spec"]
    assert selects(policy["podSelector"], pod_labels(documents, BROKER))
    assert policy["podSelector"]["matchLabels"], "an empty selector would fence every pod"
    assert policy["policyTypes"] == ["Ingress"]
    broker_port = only_container(documents, BROKER)["ports"][0]["containerPort"]
    admitted = set()
    for rule in policy["ingress"]:
        assert rule["ports"] == [{"protocol": "TCP", "port": broker_port}]
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, "no other namespace, no IP ranges"
            assert peer["podSelector"]["matchLabels"], "an empty selector admits every pod"
            matches = {
                name
                for name in (WEB, WORKER, BROKER)
                if selects(peer["podSelector"], pod_labels(documents, name))
            }
            assert matches, f"{peer} admits none of ConvScope's pods"
            assert matches <= {WEB, WORKER}, peer
            admitted |= matches
    assert admitted == {WEB, WORKER}


# --- the web replicas -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def web(documents: dict[tuple[str, str], Doc]) -> Doc:
    return only_container(documents, WEB)


def test_probes_hit_healthz_on_the_served_port(
    documents: dict[tuple[str, str], Doc], web: Doc
) -> None:
    ports = {p["name"]: p["containerPort"] for p in web["ports"]}
    assert ports == {"http": 8000}
    for probe in ("readinessProbe", "livenessProbe"):
        assert web[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert pod(documents, WEB)["securityContext"]["runAsNonRoot"] is True


def test_pods_invite_prometheus_to_scrape_metrics(
    documents: dict[tuple[str, str], Doc], web: Doc
) -> None:
    annotations = deployment(documents, WEB)["spec"]["template"]["metadata"]["annotations"]
    ports = {p["containerPort"] for p in web["ports"]}
    assert annotations["prometheus.io/scrape"] == "true"  # a string: annotations are strings
    assert int(annotations["prometheus.io/port"]) in ports
    assert annotations["prometheus.io/path"] == "/metrics"
    assert all(isinstance(value, str) for value in annotations.values())


def test_logs_are_json_and_tmp_is_writable(documents: dict[tuple[str, str], Doc], web: Doc) -> None:
    assert env_values(web)["CONVSCOPE_LOG_FORMAT"] == "json"
    assert env_values(only_container(documents, WORKER))["CONVSCOPE_LOG_FORMAT"] == "json"
    # the root filesystem is read-only, so several workers' metrics files need a volume
    assert web["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in web["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(documents, WEB)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_compute_process_is_on_only_with_a_cpu_for_it(web: Doc) -> None:
    """The pod's CPU limit, not the node's CPU count the server sees, decides whether a compute
    process beside the server pays: it needs a second CPU."""
    limit = cpus(web["resources"]["limits"]["cpu"])
    assert env_values(web).get("CONVSCOPE_COMPUTE_PROCESS") == ("true" if limit >= 2 else "false")


def broker_url(container: Doc) -> str:
    """The container's CONVSCOPE_BROKER_URL, expanded."""
    return environment(container)["CONVSCOPE_BROKER_URL"]


def test_web_trains_through_the_broker_with_no_session_affinity(
    documents: dict[tuple[str, str], Doc], web: Doc
) -> None:
    """Every replica answers for every job through the broker, so no client is pinned to one."""
    assert env_values(web)["CONVSCOPE_TRAINING"] == "true"
    assert documents[("Service", WEB)]["spec"].get("sessionAffinity", "None") == "None"
    url = urlsplit(broker_url(web))
    service = documents[("Service", BROKER)]["spec"]
    assert url.scheme == "redis"
    assert (url.hostname, url.port) == (BROKER, service["ports"][0]["port"])
    broker = only_container(documents, BROKER)
    requirepass = expand(option(broker["command"], "--requirepass"), environment(broker))
    assert url.password == requirepass, "the password the broker asks for"
    assert url.path == "/0"


# --- the workers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker(documents: dict[tuple[str, str], Doc]) -> Doc:
    return only_container(documents, WORKER)


def test_workers_share_the_web_replicas_broker_and_ttl(web: Doc, worker: Doc) -> None:
    assert worker["command"][:2] == ["convscope", "worker"]
    assert broker_url(worker) == broker_url(web)
    ttl = "CONVSCOPE_TRAINING_TTL_S"
    assert env_values(worker).get(ttl) == env_values(web).get(ttl)


def test_a_worker_requests_a_cpu_per_slot(worker: Doc) -> None:
    """Each job is a process with one BLAS thread: one CPU, ~300 MB at its peak."""
    slots = int(option(worker["command"], "--slots"))
    resources = worker["resources"]
    assert cpus(resources["requests"]["cpu"]) == slots
    assert cpus(resources["limits"]["cpu"]) >= slots
    memory = kubernetes_bytes(resources["requests"]["memory"])
    assert 512 * 2**20 * slots <= memory <= kubernetes_bytes(resources["limits"]["memory"])
    assert kubernetes_bytes(resources["limits"]["memory"]) <= 2**30 * slots


def test_workers_find_mnist_where_the_init_container_put_it(
    documents: dict[tuple[str, str], Doc], worker: Doc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONVSCOPE_MNIST_DIR is a mounted volume; an emptyDir is filled first by an init container,
    whose code is run here against a stand-in with download_mnist's real signature."""
    from server.training import mnist

    directory = env_values(worker)["CONVSCOPE_MNIST_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    assert directory in mounts, f"nothing is mounted at CONVSCOPE_MNIST_DIR={directory}"
    volume = {v["name"]: v for v in pod(documents, WORKER)["volumes"]}[mounts[directory]]
    if "emptyDir" not in volume:
        return  # a volume that already holds MNIST
    (init,) = [
        c
        for c in pod(documents, WORKER).get("initContainers", [])
        if any(m["name"] == mounts[directory] for m in c["volumeMounts"])
    ]
    assert init["command"][:2] == ["python", "-c"]
    calls: list[inspect.BoundArguments] = []
    real = inspect.signature(mnist.download_mnist)
    monkeypatch.setattr(mnist, "download_mnist", lambda *a, **k: calls.append(real.bind(*a, **k)))
    exec(init["command"][2], {})
    (call,) = calls
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert str(call.arguments["directory"]) == init_mounts[mounts[directory]]


def test_a_worker_has_time_to_stop_its_job(documents: dict[tuple[str, str], Doc]) -> None:
    """SIGTERM stops the job in hand within ~8 s (SAQ's 5 s, the process's 3 s) and ends it on
    the broker; the kubelet's SIGKILL must not come first, or the job stays `running` until a
    sweep notices its silent worker."""
    assert pod(documents, WORKER).get("terminationGracePeriodSeconds", 30) >= 15


def test_workers_scale_on_cpu(documents: dict[tuple[str, str], Doc]) -> None:
    spec = documents[("HorizontalPodAutoscaler", WORKER)]["spec"]
    assert spec["scaleTargetRef"]["name"] == WORKER
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_the_keda_example_watches_saqs_real_lists() -> None:
    """worker.yaml's commented ScaledObject parses, and names the lists SAQ really keeps."""
    import redis.asyncio
    from saq.queue.redis import RedisQueue

    from server.training.jobs.broker import QUEUE

    text = (K8S / "worker.yaml").read_text()
    start = text.index("# apiVersion: keda.sh/")
    example = yaml.safe_load(
        "\n".join(line.removeprefix("# ").removeprefix("#") for line in text[start:].splitlines())
    )
    assert example["kind"] == "ScaledObject"
    assert example["spec"]["scaleTargetRef"]["name"] == WORKER
    queue = RedisQueue(redis.asyncio.Redis(), name=QUEUE)
    lists = {t["name"]: t["metadata"]["listName"] for t in example["spec"]["triggers"]}
    assert lists == {"queued": queue.namespace("queued"), "active": queue.namespace("active")}
    for trigger in example["spec"]["triggers"]:
        assert trigger["metadata"]["address"].split(".")[0] == BROKER
