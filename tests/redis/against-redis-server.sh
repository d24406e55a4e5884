#!/usr/bin/env bash
# Runs the Redis-dialect client scripts against a real redis-server, to check the
# scripts themselves (they must pass there too). Starts redis-server on 127.0.0.1 on a
# free port, without persistence, and stops it at the end.
#
#   LOCKBOX_REDIS_CLIENTS_DIR=<dir with node_modules from package.json> \
#   [LOCKBOX_PYTHON=<python with requirements.txt installed>] \
#   bash tests/redis/against-redis-server.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${LOCKBOX_REDIS_CLIENTS_DIR:?set it to the directory holding node_modules (npm ci there with package.json and package-lock.json)}"
python="${LOCKBOX_PYTHON:-python3}"
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)"; exit 1; }

port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null && break
  sleep 0.05
done

addr="127.0.0.1:$port"
export NODE_PATH="$LOCKBOX_REDIS_CLIENTS_DIR/node_modules"
node "$here/distlock.js" "$addr" | tail -n 1
node "$here/redlock.js" "$addr" | tail -n 1
"$python" "$here/redis_py_lock.py" "$addr" | tail -n 1
