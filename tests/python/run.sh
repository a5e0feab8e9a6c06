#!/bin/bash
# The API from a second language: a Python client (grpcio from PyPI, stubs generated from
# proto/proto/vswitch/v1/vswitch.proto) drives a real vswitchd over its unix socket.
#   tests/python/run.sh PATH/TO/vswitchd
# Creates (once) a virtualenv under target/py-venv; needs python3 with venv and PyPI access.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
vswitchd=${1:?usage: run.sh PATH/TO/vswitchd}
venv=${VSWITCH_PY_VENV:-$root/target/py-venv}
py=python3
if ! $py -c 'import venv, ensurepip' 2>/dev/null; then
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
    py=/usr/bin/python3
  else
    echo "run.sh: python3 with the venv module is required: apt-get install python3-venv" >&2
    exit 1
  fi
fi
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null; then
  rm -rf "$venv"
  $py -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'grpcio>=1.60' 'grpcio-tools>=1.60'
fi
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I "$root/proto/proto" --python_out="$work" \
  --grpc_python_out="$work" "$root/proto/proto/vswitch/v1/vswitch.proto"
"$vswitchd" --db "$work/conf.db" --listen "unix:$work/api.sock" 2>"$work/vswitchd.log" &
echo $! > "$work/pid"
for _ in $(seq 200); do [ -S "$work/api.sock" ] && break; sleep 0.05; done
[ -S "$work/api.sock" ] || { cat "$work/vswitchd.log" >&2; echo "run.sh: vswitchd did not start" >&2; exit 1; }
PYTHONPATH="$work" "$venv/bin/python" "$root/tests/python/test_client.py" "unix:$work/api.sock"
