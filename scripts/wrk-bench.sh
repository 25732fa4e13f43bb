#!/usr/bin/env bash
# Throughput of GET /healthz and POST /api/v1/predict under wrk, in one run, and their ratio.
#
#   scripts/wrk-bench.sh                          # starts `convscope serve` (1 worker), free port
#   scripts/wrk-bench.sh --url http://127.0.0.1:8000 --connections 16 --seconds 8
#
# The predict body is the pad's digit (scripts/pad_digit.py: a 280x280 PNG drawn like the page
# draws) with activations, encoding uint8 unless --encoding says otherwise. Every request sends
# the browser's Accept-Encoding. Prints wrk's own report for each, then req/s, non-2xx
# responses, socket errors, the ratio, and the predict answer's size on the wire (curl); for a
# server it started, also its CPU time per request (its compute process's included, and the
# split: the event loop's process, its children), steadier than req/s on a busy machine.
# Loopback targets only. Exits 1 when any request failed. (scripts/loadtest.py measures latency
# percentiles and correctness under load; this is the throughput measure.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON=python3
ACCEPT="gzip, deflate, br, zstd"
URL=""
CONNECTIONS=16
SECONDS_EACH=8
THREADS=2
ENCODING=uint8
WEIGHTS=""

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  echo "options: --url URL  --connections N (16)  --seconds S (8)  --threads N (2)"
  echo "         --encoding uint8|base64|list (uint8)  --weights FILE (when starting a server)"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --url) URL="${2%/}"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --encoding) ENCODING="$2"; shift 2 ;;
    --weights) WEIGHTS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "wrk-bench: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

for number in "$CONNECTIONS" "$SECONDS_EACH" "$THREADS"; do
  [[ "$number" =~ ^[1-9][0-9]*$ ]] || { echo "wrk-bench: '$number' is not a positive integer" >&2; exit 2; }
done
(( SECONDS_EACH <= 600 )) || { echo "wrk-bench: --seconds is capped at 600" >&2; exit 2; }
(( THREADS <= CONNECTIONS )) || THREADS="$CONNECTIONS"
command -v wrk >/dev/null || { echo "wrk-bench: wrk is not installed (apt-get install wrk)" >&2; exit 2; }

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -n "$URL" ]]; then
  if ! [[ "$URL" =~ ^https?://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?$ ]]; then
    echo "wrk-bench: refusing $URL: only loopback addresses (127.x.x.x, localhost, [::1])" >&2
    exit 2
  fi
else
  PORT="$(cd "$ROOT" && "$PYTHON" -c 'from server.cli.local_server import free_port; print(free_port())')"
  URL="http://127.0.0.1:$PORT"
  [[ -z "$WEIGHTS" ]] || export CONVSCOPE_WEIGHTS="$(realpath "$WEIGHTS")"
  # As `convscope serve` runs it: its HTTP protocol, its logging (an access line per request).
  (cd "$ROOT" && PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m server.cli.convscope \
    serve --host 127.0.0.1 --port "$PORT" --workers 1) >"$WORK/uvicorn.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "wrk-bench: uvicorn exited:" >&2; cat "$WORK/uvicorn.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS -o /dev/null "$URL/healthz" || { echo "wrk-bench: no answer from $URL/healthz" >&2; exit 1; }
fi

(cd "$ROOT" && "$PYTHON" scripts/pad_digit.py --encoding "$ENCODING") >"$WORK/body.json"

# The answer once, checked, and its size: on the wire with the browser's header, then plain.
read -r WIRE STATUS CODING < <(curl -sS --compressed -H "Accept-Encoding: $ACCEPT" \
  -H 'Content-Type: application/json' --data-binary @"$WORK/body.json" -o "$WORK/answer.json" \
  -w '%{size_download} %{http_code} %header{content-encoding}\n' "$URL/api/v1/predict")
if [[ "$STATUS" != 200 ]]; then
  echo "wrk-bench: predict answered $STATUS:" >&2; head -c 500 "$WORK/answer.json" >&2; echo >&2
  exit 1
fi
PLAIN="$(curl -sS -H 'Accept-Encoding: identity' -H 'Content-Type: application/json' \
  --data-binary @"$WORK/body.json" -o /dev/null -w '%{size_download}' "$URL/api/v1/predict")"

proc_ticks() {  # user + system CPU ticks of the given processes
  local pid total=0
  for pid in "$@"; do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}
cpu_ticks() {  # "all main": the server we started with its children (compute, tracker); itself
  [[ -n "$SERVER_PID" ]] || { echo "0 0"; return; }
  # shellcheck disable=SC2046  # the children's pids, one word each
  echo "$(proc_ticks "$SERVER_PID" $(pgrep -P "$SERVER_PID" || true)) $(proc_ticks "$SERVER_PID")"
}
run_wrk() {  # name, then wrk's arguments; also notes the server's CPU ticks spent (all, main)
  local name="$1"; shift
  local all main
  read -r all main < <(cpu_ticks)
  wrk --threads "$THREADS" --connections "$CONNECTIONS" --duration "${SECONDS_EACH}s" \
    --timeout 10s -H "Accept-Encoding: $ACCEPT" "$@" | tee "$WORK/$name.txt"
  read -r all_after main_after < <(cpu_ticks)
  echo "$(( all_after - all )) $(( main_after - main ))" >"$WORK/$name.ticks"
}
run_wrk healthz "$URL/healthz"
WRK_BODY="$WORK/body.json" run_wrk predict --script "$ROOT/scripts/wrk-post.lua" "$URL/api/v1/predict"

field() {  # file, awk program printing one number (0 when the line is absent)
  awk "$2" "$1" | tail -n 1 | grep . || echo 0
}
rate() { field "$1" '/^Requests\/sec:/ {print $2}'; }
non2xx() { field "$1" '/Non-2xx or 3xx responses:/ {print $NF}'; }
socket_errors() {  # connect + read + write + timeout
  field "$1" '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}'
}
HEALTH_RATE="$(rate "$WORK/healthz.txt")"
PREDICT_RATE="$(rate "$WORK/predict.txt")"
FAILED=0
echo
echo "== $URL, $CONNECTIONS connections, $THREADS wrk threads, ${SECONDS_EACH} s each, Accept-Encoding: $ACCEPT"
for name in healthz predict; do
  rps="$(rate "$WORK/$name.txt")"; bad="$(non2xx "$WORK/$name.txt")"; sock="$(socket_errors "$WORK/$name.txt")"
  cpu=""
  if [[ -n "$SERVER_PID" ]]; then  # CPU per request: steadier than req/s on a shared machine
    read -r all main <"$WORK/$name.ticks"
    cpu="$(awk -v t="$all" -v m="$main" -v hz="$(getconf CLK_TCK)" -v n="$(field "$WORK/$name.txt" '/requests in/ {print $1}')" \
      'BEGIN { k = (n > 0 ? 1000 / hz / n : 0)
               printf "   server CPU %.3f ms/request (event loop %.3f, its children %.3f)", t * k, m * k, (t - m) * k }')"
  fi
  printf '%-8s %9s req/s   non-2xx %s   socket errors %s%s\n' "$name" "$rps" "$bad" "$sock" "$cpu"
  (( bad == 0 && sock == 0 )) || FAILED=1
done
awk -v p="$PREDICT_RATE" -v h="$HEALTH_RATE" \
  'BEGIN { printf "ratio    predict/healthz = %.3f\n", (h > 0 ? p / h : 0) }'
echo "predict  (activations, encoding $ENCODING): ${WIRE} B on the wire (${CODING:-identity}), ${PLAIN} B uncompressed"
exit "$FAILED"
