# Shared set-up for scripts/run and scripts/test: installs what is missing
# and starts PostGIS and Mosquitto unless they already answer.
# Sourced, not run; expects ROOT to be the repository root.

set -euo pipefail

VAR="$ROOT/var"
VENV="$ROOT/.venv"
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT="${FIREGRID_PG_PORT:-55432}"
APT_PACKAGES=(gettext postgresql-15 postgresql-15-postgis-3 mosquitto chromium fonts-wqy-zenhei nodejs npm python3-venv)

log() { printf '[firegrid] %s\n' "$*" >&2; }
fail() { printf '[firegrid] error: %s\n' "$*" >&2; exit 1; }

ensure_apt_packages() {
  local missing=()
  local package
  for package in "${APT_PACKAGES[@]}"; do
    # node and npm may come from elsewhere (nvm, NodeSource); accept any on PATH.
    if [[ "$package" == nodejs ]] && command -v node >/dev/null; then continue; fi
    if [[ "$package" == npm ]] && command -v npm >/dev/null; then continue; fi
    if [[ "$package" == python3-venv ]] && python3 -c 'import ensurepip, venv' 2>/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  if ((${#missing[@]} == 0)); then
    return
  fi
  if [[ $EUID -ne 0 ]]; then
    fail "missing Debian packages; run as root: apt-get update && apt-get install -y ${missing[*]}"
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

ensure_venv() {
  local stamp="$VENV/.firegrid-lock.sha256"
  local lock_hash
  lock_hash=$(sha256sum "$ROOT/requirements.lock" | cut -d' ' -f1)
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
    return
  fi
  log "installing Python packages from requirements.lock into .venv/"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.lock" >&2
  echo "$lock_hash" > "$stamp"
}

ensure_static_assets() {
  if [[ -f "$ROOT/node_modules/leaflet/dist/leaflet.js" && -f "$ROOT/node_modules/.package-lock.json" \
        && "$ROOT/node_modules/.package-lock.json" -nt "$ROOT/package-lock.json" ]]; then
    return
  fi
  log "installing Leaflet assets from the npm registry into node_modules/"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
}

# Prints the folder for the project-local cluster. It is var/pg unless the
# postgres user cannot reach the checkout (for example under /root), in which
# case it moves to /var/lib/firegrid/<hash of the checkout path>.
local_cluster_dir() {
  if [[ $EUID -ne 0 ]] || runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    echo "$VAR/pg"
  else
    echo "/var/lib/firegrid/$(echo -n "$ROOT" | sha256sum | cut -c1-12)"
  fi
}

# Runs from / because the postgres user may not be allowed into the checkout.
as_postgres() {
  if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

ensure_database() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    log "using DATABASE_URL from the environment"
    return
  fi
  local cluster data
  cluster=$(local_cluster_dir)
  data="$cluster/data"
  mkdir -p "$cluster/run"
  if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$cluster" "$cluster/run"; fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    log "creating a PostgreSQL cluster in $data"
    as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$cluster/postgresql.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $cluster/run -c fsync=off -c synchronous_commit=off -c max_wal_size=4GB -c shared_buffers=512MB -c maintenance_work_mem=512MB" start >/dev/null \
      || fail "PostgreSQL did not start; see $cluster/postgresql.log"
  fi
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  # PostGIS in template1 gives the test database the extension as well.
  "${psql[@]}" -d template1 -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  local name="${FIREGRID_DB_NAME:-firegrid}"
  [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || fail "FIREGRID_DB_NAME '$name' must be lower-case letters, digits and _"
  if [[ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE $name" >/dev/null
  fi
  export DATABASE_URL="postgis://postgres@127.0.0.1:$PG_PORT/$name"
}

ensure_mosquitto() {
  export MQTT_URL="${MQTT_URL:-mqtt://127.0.0.1:1883}"
  local host port
  host=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).hostname or "127.0.0.1")' "$MQTT_URL")
  port=$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).port or 1883)' "$MQTT_URL")
  if python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()' "$host" "$port" 2>/dev/null; then
    return
  fi
  case "$host" in
    127.*|localhost) ;;
    *) fail "no MQTT broker answers at $MQTT_URL; start it or unset MQTT_URL" ;;
  esac
  log "starting Mosquitto on $host:$port"
  mkdir -p "$VAR/mosquitto"
  cat > "$VAR/mosquitto/mosquitto.conf" <<CONF
listener $port $host
allow_anonymous true
persistence true
persistence_location $VAR/mosquitto/
# The listener's persistent session may fall behind a burst; unlimited queues
# keep acknowledged QoS 1 messages instead of dropping them past 1,000.
max_queued_messages 0
autosave_interval 10
log_dest file $VAR/mosquitto/mosquitto.log
CONF
  if [[ $EUID -eq 0 ]]; then chown -R mosquitto:mosquitto "$VAR/mosquitto" 2>/dev/null || true; fi
  mosquitto -d -c "$VAR/mosquitto/mosquitto.conf"
  local attempt
  for attempt in $(seq 1 50); do
    python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' "$host" "$port" 2>/dev/null && return
    sleep 0.1
  done
  fail "Mosquitto did not start; see $VAR/mosquitto/mosquitto.log"
}

compile_translations() {
  if compgen -G "$ROOT/locale/*/LC_MESSAGES/django.po" >/dev/null; then
    (cd "$ROOT" && "$VENV/bin/python" manage.py compilemessages -v 0 --ignore=.venv --ignore=node_modules >&2)
  fi
}

bootstrap() {
  mkdir -p "$VAR"
  ensure_apt_packages
  ensure_venv
  ensure_static_assets
  ensure_database
  ensure_mosquitto
  export JIEBA_CACHE_DIR="$VAR/cache"
  mkdir -p "$VAR/cache"
  compile_translations
}
