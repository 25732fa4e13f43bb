#!/usr/bin/env bash
# Build the image and prove it serves: /healthz, a posted digit read right, a non-root user.
# No registry is reachable here, so the base image is made locally with debootstrap.
# Usage: scripts/container-smoke.sh   (root; installs docker.io and debootstrap if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=convscope:smoke
NAME=convscope-smoke-$$
BASE=localhost/pybase:bookworm
PORT=${PORT:-18000}
PY=${PY:-.venv/bin/python}
WORK=$(mktemp -d)
DOCKERD_PID=""

log() { printf '[container-smoke] %s\n' "$*"; }

cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing docker.io and debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  dockerd >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; log "dockerd did not start"; exit 1; }
fi

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  log "making $BASE with debootstrap (bookworm, minbase)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$WORK/rootfs" update-ca-certificates >/dev/null
  tar -C "$WORK/rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' - "$BASE" >/dev/null
fi

log "building $IMAGE"
docker build --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; log "FAIL: docker build"; exit 1; }

log "running on 127.0.0.1:$PORT"
docker run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null
for _ in $(seq 60); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" | grep -q '"ok"' || { docker logs "$NAME"; exit 1; }

uid=$(docker exec "$NAME" id -u)
[ "$uid" != 0 ] || { log "FAIL: the container runs as root"; exit 1; }

label=$("$PY" - "$PORT" <<'PYEOF'
import base64, io, json, sys, urllib.request
from PIL import Image, ImageDraw
image = Image.new("L", (280, 280), 255)
ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=0, width=22)  # a "1", dark on light
buffer = io.BytesIO()
image.save(buffer, "PNG")
body = json.dumps({"image": base64.b64encode(buffer.getvalue()).decode()}).encode()
request = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/api/v1/predict", body, {"content-type": "application/json"}
)
print(json.load(urllib.request.urlopen(request, timeout=10))["label"])
PYEOF
)
[ "$label" = 1 ] || { log "FAIL: a drawn 1 was read as $label"; exit 1; }

for _ in $(seq 30); do
  health=$(docker inspect --format '{{.State.Health.Status}}' "$NAME")
  [ "$health" = healthy ] && break
  sleep 1
done
[ "$health" = healthy ] || { log "FAIL: HEALTHCHECK says $health"; exit 1; }

log "OK: healthy, serves /healthz, reads a drawn 1, runs as uid $uid"
