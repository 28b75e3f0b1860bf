#!/usr/bin/env bash
# Proves the README's two commands work from a fresh clone: `make setup` (the set-up step of
# `make test`) builds .venv from nothing, and `make run` prints a URL and an API key that the
# server accepts. Uses only the committed tree, as a newcomer would get it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -- -"$server_pid" 2>/dev/null || kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "fresh-clone check: cloning $repo into $work/agentmem"
git clone -q --no-local "$repo" "$work/agentmem"
cd "$work/agentmem"

echo "fresh-clone check: make setup"
make setup >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
echo "fresh-clone check: make run PORT=$port"
setsid make run PORT="$port" >"$work/run.log" 2>&1 &
server_pid=$!

url=""; key=""
for _ in $(seq 1 1500); do  # >= 5 min: a first start also exports the model to ONNX (~30 s)
  url="$(sed -n 's/^URL: //p' "$work/run.log" | head -n1)"
  key="$(sed -n 's/^API key: //p' "$work/run.log" | head -n1)"
  if [ -n "$url" ] && [ -n "$key" ] && curl -fsS "$url/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/run.log"; echo "make run exited early"; exit 1; fi
  sleep 0.2
done
[ -n "$url" ] && [ -n "$key" ] || { cat "$work/run.log"; echo "make run printed no URL/API key"; exit 1; }
curl -fsS "$url/healthz" >/dev/null || { cat "$work/run.log"; echo "no /healthz at $url"; exit 1; }

status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$url/v1/memory")"
[ "$status" = "200" ] || { echo "printed key was refused: HTTP $status"; exit 1; }
bad="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer am_not_a_key" "$url/v1/memory")"
[ "$bad" = "401" ] || { echo "a wrong key was not refused: HTTP $bad"; exit 1; }
echo "fresh-clone check: OK ($url answered /healthz and accepted the printed key)"
