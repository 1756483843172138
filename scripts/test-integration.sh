#!/usr/bin/env bash
# Integration suite: everything that needs system packages or real servers.
# Installs what it needs from Debian (apt) itself, so it passes on a fresh machine; servers listen on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages needed by the suites (added as suites appear).
# softhsm2: the PKCS#11 HSM for the keystore suites; each test creates its own token under a temp dir
# (private SOFTHSM2_CONF), so nothing in /etc/softhsm or /var/lib/softhsm is used or changed.
# postgresql: the server for the storage suite (started below as a private cluster, never the system one).
# redis-server: rate limits and quotas shared by gateway replicas (a private server, started below).
# tcpdump: the plaintext-canary test captures all loopback traffic (test/integration/security-canaries.test.ts).
APT_PACKAGES=(openssl softhsm2 postgresql chromium curl redis-server tcpdump)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# PostgreSQL for the storage suite (TRESOR_TEST_PG_URL, unless already set to a server of your own):
# a throwaway cluster in a temp dir, on 127.0.0.1 only, on a free port, with a random password; it is
# stopped and deleted on exit. postgres refuses to run as root, so under root it runs as Debian's
# `postgres` user. The Debian package's own cluster (if any) is neither used nor touched.
PG_DIR=''
PG_BIN=''
PG_AS=()
stop_postgres() {
  if [ -n "$PG_DIR" ]; then
    (cd / && "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1) || true
    rm -rf "$PG_DIR"
  fi
}
start_postgres() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_DIR=$(mktemp -d /tmp/tresor-pg.XXXXXX)
  trap stop_postgres EXIT
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_DIR"
    PG_AS=(runuser -u postgres --)
  fi
  local password port
  password=$(node -e "process.stdout.write(require('node:crypto').randomBytes(24).toString('hex'))")
  port=$(node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})")
  (umask 077 && printf '%s\n' "$password" >"$PG_DIR/pwfile")
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$PG_DIR/pwfile"; fi
  (cd / && "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U tresor --pwfile="$PG_DIR/pwfile" \
    --auth-host=scram-sha-256 --auth-local=peer -E UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1)
  rm -f "$PG_DIR/pwfile"
  (cd / && "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_DIR" start >/dev/null)
  export TRESOR_TEST_PG_URL="postgresql://tresor:$password@127.0.0.1:$port/postgres"
  # For the fault-injection test that restarts the server under load (reliability-datastores.test.ts).
  export TRESOR_TEST_PG_DATA="$PG_DIR/data" TRESOR_TEST_PG_CTL="$PG_BIN/pg_ctl"
  echo "PostgreSQL test cluster on 127.0.0.1:$port ($PG_DIR)"
}
if [ -z "${TRESOR_TEST_PG_URL:-}" ]; then start_postgres; fi

# Redis for the gateway's counter store (TRESOR_TEST_REDIS_URL, unless already set): a private
# redis-server on 127.0.0.1, a free port, no persistence, stopped on exit. The system service is not used.
REDIS_PID=''
stop_redis() { if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi; }
start_redis() {
  local port
  port=$(node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})")
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
  REDIS_PID=$!
  trap 'stop_redis; stop_postgres' EXIT
  for _ in $(seq 1 50); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  export TRESOR_TEST_REDIS_URL="redis://127.0.0.1:$port"
  echo "Redis test server on 127.0.0.1:$port"
}
if [ -z "${TRESOR_TEST_REDIS_URL:-}" ]; then start_redis; fi

npx tsc -b
npx vitest run --project integration --passWithNoTests
