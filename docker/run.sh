#!/usr/bin/env bash
# Run the QTC suite with its demo data: `bash docker/run.sh [--check] [--reset]`.
#
# Picks the first way that works on this machine:
#   docker  `docker compose` exists and `docker info` reaches an engine:
#           `docker compose -f docker/compose.yaml up --build` (PostgreSQL 16 and
#           Odoo 18 in containers, demo database created on first start).
#   local   python3 imports Odoo 18 and PostgreSQL answers: creates the demo
#           database with every installable qtc addon if it is missing, then
#           execs Odoo 18 from this machine.
# With neither it says what is missing and what to do next, and exits 2.
#
# Options:
#   --check   print the mode that would be used and exit: 0 usable, 2 not
#   --reset   drop the demo database first (docker: remove the stack's volumes)
#   --print-ca-bundle
#             write the CA bundle local mode gives Odoo (REQUESTS_CA_BUNDLE),
#             print its path and exit: the bundle already configured in the
#             environment (REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE),
#             the public roots and the demo stand-in's local CA
#
# Environment (defaults in brackets):
#   QTC_MODE            auto | docker | local                        [auto]
#   QTC_DB              demo database name                           [qtc_demo]
#   QTC_HTTP_PORT       HTTP port                                    [8069]
#   QTC_GEVENT_PORT     websocket port of local mode                 [8072]
#   QTC_WORKERS         Odoo HTTP worker processes                   [2]
#   QTC_STANDIN_PORT    port of the demo driver's Salesforce stand-in [8443]
#   QTC_ALLOWED_HOSTS   outbound destinations beyond the providers' hosts
#                       (local mode: [127.0.0.1:$QTC_STANDIN_PORT], the stand-in)
#   QTC_ENCRYPTION_KEY  Fernet key for connector credentials; when unset, one is
#                       generated once and kept in .qtc/encryption.key (mode 600)
#   QTC_DB_HOST, QTC_DB_PORT, QTC_DB_USER, QTC_DB_PASSWORD
#                       local PostgreSQL (libpq defaults when unset)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE_FILE="$ROOT/docker/compose.yaml"
KEY_FILE="$ROOT/.qtc/encryption.key"
DB="${QTC_DB:-qtc_demo}"
HTTP_PORT="${QTC_HTTP_PORT:-8069}"
GEVENT_PORT="${QTC_GEVENT_PORT:-8072}"
WORKERS="${QTC_WORKERS:-2}"
STANDIN_PORT="${QTC_STANDIN_PORT:-8443}"
MODE="${QTC_MODE:-auto}"

check_only=0
reset=0
print_ca_bundle=0

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
    echo "docker/run.sh: $*" >&2
    exit 2
}

for arg in "$@"; do
    case "$arg" in
        --check) check_only=1 ;;
        --reset) reset=1 ;;
        --print-ca-bundle) print_ca_bundle=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

# The name reaches SQL, Odoo's --db-filter and file paths: keep it plain.
[[ "$DB" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] || die "QTC_DB=$DB: use letters, digits, _ . -"
for number in "$HTTP_PORT" "$GEVENT_PORT" "$WORKERS" "$STANDIN_PORT"; do
    [[ "$number" =~ ^[0-9]+$ ]] || die "not a number: $number (QTC_HTTP_PORT, QTC_GEVENT_PORT, QTC_WORKERS, QTC_STANDIN_PORT)"
done
case "$MODE" in auto | docker | local) ;; *) die "QTC_MODE=$MODE: use auto, docker or local" ;; esac

# Run "$@" with a time limit when coreutils' timeout exists (a Docker client
# talking to an unreachable remote engine can otherwise hang).
with_timeout() {
    local seconds="$1"
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout "$seconds" "$@"
    else
        "$@"
    fi
}

# --------------------------------------------------------------- detection

docker_problem=""
detect_docker() {
    if ! command -v docker >/dev/null 2>&1; then
        docker_problem="docker is not installed"
    elif ! docker compose version >/dev/null 2>&1; then
        docker_problem="the Docker Compose plugin is missing ('docker compose version' fails)"
    elif ! with_timeout 20 docker info >/dev/null 2>&1; then
        docker_problem="no Docker engine answers ('docker info' fails)"
    fi
    [ -z "$docker_problem" ]
}

odoo_problem=""
odoo_dir=""
detect_odoo() {
    if ! command -v python3 >/dev/null 2>&1; then
        odoo_problem="python3 is not installed"
        return 1
    fi
    local probe='import os, sys
import odoo.release as r
if r.version_info[0] != 18:
    sys.exit("found Odoo %s, need 18.0" % r.version)
import odoo
print(os.path.dirname(os.path.abspath(odoo.__file__)))'
    local out
    # From / so that nothing in the current directory shadows the odoo package.
    if out="$(cd / && python3 -c "$probe" 2>&1)"; then
        odoo_dir="$(printf '%s\n' "$out" | tail -n 1)"
        return 0
    fi
    case "$out" in
        *"found Odoo"*) odoo_problem="python3 imports the wrong Odoo: $(printf '%s\n' "$out" | tail -n 1)" ;;
        *) odoo_problem="python3 cannot import Odoo 18 ($(printf '%s\n' "$out" | tail -n 1))" ;;
    esac
    return 1
}

pg_problem=""
pg_where=""
detect_postgres() {
    # libpq reads these, so pg_isready, psql and Odoo all reach the same server.
    if [ -n "${QTC_DB_HOST:-}" ]; then export PGHOST="$QTC_DB_HOST"; fi
    if [ -n "${QTC_DB_PORT:-}" ]; then export PGPORT="$QTC_DB_PORT"; fi
    if [ -n "${QTC_DB_USER:-}" ]; then export PGUSER="$QTC_DB_USER"; fi
    if [ -n "${QTC_DB_PASSWORD:-}" ]; then export PGPASSWORD="$QTC_DB_PASSWORD"; fi
    if ! command -v pg_isready >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
        pg_problem="the PostgreSQL client tools (pg_isready, psql) are not installed"
        return 1
    fi
    local out
    if ! out="$(with_timeout 10 pg_isready 2>&1)"; then
        pg_problem="PostgreSQL is not answering (pg_isready: ${out:-no answer})"
        return 1
    fi
    pg_where="${out%% - *}"
}

report_missing() {
    echo "Cannot run the QTC suite on this machine:" >&2
    if [ -n "$docker_problem" ]; then
        echo "  - No Docker engine: $docker_problem." >&2
        echo "    Next: install Docker Engine with the Compose plugin and start it" \
            "('docker info' must succeed)." >&2
    fi
    if [ -n "$odoo_problem" ]; then
        echo "  - $odoo_problem." >&2
        echo "    Next: install Odoo 18.0 (README.md, 'Installing without docker')" \
            "so that python3 -c 'import odoo' works." >&2
    fi
    if [ -n "$pg_problem" ]; then
        echo "  - $pg_problem." >&2
        echo "    Next: install and start PostgreSQL, or point QTC_DB_HOST," \
            "QTC_DB_PORT, QTC_DB_USER, QTC_DB_PASSWORD at a running server." >&2
    fi
    exit 2
}

# ----------------------------------------------------------- shared pieces

# Fernet key (url-safe base64 of 32 random bytes) for connector credentials.
ensure_encryption_key() {
    if [ -z "${QTC_ENCRYPTION_KEY:-}" ]; then
        if [ ! -s "$KEY_FILE" ]; then
            if [ ! -d "$ROOT/.qtc" ]; then
                mkdir -p "$ROOT/.qtc"
                chmod 700 "$ROOT/.qtc"
            fi
            (
                umask 077
                head -c 32 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_' >"$KEY_FILE.tmp"
                mv "$KEY_FILE.tmp" "$KEY_FILE"
            )
            echo "Generated the credential encryption key in .qtc/encryption.key:" \
                "keep it, stored credentials cannot be read without it."
        fi
        chmod 600 "$KEY_FILE"
        QTC_ENCRYPTION_KEY="$(tr -d '[:space:]' <"$KEY_FILE")"
    fi
    if [[ ! "$QTC_ENCRYPTION_KEY" =~ ^[A-Za-z0-9_-]{43}=$ ]]; then
        die "QTC_ENCRYPTION_KEY is not a Fernet key (44 url-safe base64 characters)"
    fi
    export QTC_ENCRYPTION_KEY
}

# The demo driver (tests/e2e/demo.py) serves a Salesforce stand-in over HTTPS
# on 127.0.0.1 with a local CA. Odoo must trust that CA in addition to what it
# trusts already, never instead: a bundle chosen before (a corporate proxy's,
# a CI runner's) stays trusted. Prints the bundle's path.
demo_ca_bundle() {
    python3 "$ROOT/tests/e2e/harness.py" ca-bundle
}

# ---------------------------------------------------------------- docker

run_docker() {
    echo "Using docker compose ($COMPOSE_FILE: PostgreSQL 16, Odoo 18)"
    if [ "$check_only" = 1 ]; then
        exit 0
    fi
    ensure_encryption_key
    if [ "$reset" = 1 ]; then
        echo "Resetting: removing the stack and its volumes (database and filestore)"
        docker compose -f "$COMPOSE_FILE" down --volumes
    fi
    echo "Odoo will answer on http://localhost:$HTTP_PORT once odoo-init has" \
        "created database $DB (first start: several minutes); login admin / admin."
    exec docker compose -f "$COMPOSE_FILE" up --build
}

# ----------------------------------------------------------------- local

addons_path=""
addons=()
list_local_addons() {
    local package_addons="$odoo_dir/addons"
    local source_addons
    source_addons="$(dirname "$odoo_dir")/addons"
    addons_path="$package_addons"
    if [ -d "$source_addons" ] && [ "$source_addons" != "$package_addons" ]; then
        addons_path="$addons_path,$source_addons"  # a source checkout
    fi
    addons_path="$addons_path,$ROOT/addons"
    local found
    found="$(
        python3 - "$ROOT/addons" <<'PY'
import ast
import pathlib
import re
import sys

for manifest in sorted(pathlib.Path(sys.argv[1]).glob("qtc_*/__manifest__.py")):
    name = manifest.parent.name
    if re.fullmatch(r"[a-z0-9_]+", name) and ast.literal_eval(
        manifest.read_text()
    ).get("installable", True):
        print(name)
PY
    )"
    addons=()
    if [ -n "$found" ]; then
        mapfile -t addons <<<"$found"
    fi
}

# Print the one value returned by the SQL on stdin, run in database $1.
# (psql substitutes :'var' only in SQL read from stdin or a file, not in -c.)
sql_value() {
    local database="$1"
    shift
    psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$database" "$@"
}

db_exists() {
    [ "$(sql_value postgres -v db="$DB" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db';")" = 1 ]
}

# How many of the qtc addons are installed in the demo database (0 if it has
# no Odoo tables yet).
installed_count() {
    local names
    names="$(IFS=,; echo "${addons[*]}")"
    sql_value "$DB" -v names="$names" 2>/dev/null <<'SQL' || echo 0
SELECT count(*) FROM ir_module_module
 WHERE state = 'installed' AND name = ANY (string_to_array(:'names', ','));
SQL
}

run_local() {
    echo "Using local Odoo 18 at $odoo_dir and PostgreSQL at $pg_where"
    list_local_addons
    local addon_list
    addon_list="$(IFS=,; echo "${addons[*]}")"
    if [ "$check_only" = 1 ]; then
        echo "addons path: $addons_path"
        echo "qtc addons to install: ${addon_list:-none yet}"
        if db_exists; then
            echo "database $DB: exists, $(installed_count) of ${#addons[@]} qtc addons installed"
        else
            echo "database $DB: not created yet"
        fi
        exit 0
    fi
    [ "${#addons[@]}" -gt 0 ] || die "no installable qtc_* addon under $ROOT/addons"
    ensure_encryption_key
    export TZ=UTC
    cd /  # nothing in the caller's directory may shadow Odoo's modules

    if [ "$reset" = 1 ] && db_exists; then
        echo "Resetting: dropping database $DB and its filestore"
        python3 -m odoo db drop "$DB"
    fi
    if ! db_exists || [ "$(installed_count)" != "${#addons[@]}" ]; then
        echo "Installing $addon_list with demo data into database $DB" \
            "(first run: several minutes)"
        python3 "$ROOT/docker/odoo_local.py" -d "$DB" --addons-path "$addons_path" -i "$addon_list" \
            --stop-after-init --workers 0 --max-cron-threads 0 --log-level warn
    fi

    if [ -f "$ROOT/tests/e2e/harness.py" ]; then
        local before="${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-${CURL_CA_BUNDLE:-}}}"
        REQUESTS_CA_BUNDLE="$(demo_ca_bundle)" \
            || die "could not create the demo stand-in's certificates"
        export REQUESTS_CA_BUNDLE
        echo "Outbound HTTPS trusts ${before:+$before, }the public roots and the" \
            "demo stand-in's local CA: REQUESTS_CA_BUNDLE=$REQUESTS_CA_BUNDLE"
    fi
    # Connector requests go only to each provider's hosts and never to the
    # loopback: the demo's stand-in (127.0.0.1, port QTC_STANDIN_PORT) is
    # allowed the way the server configuration allows a destination.
    if [ -z "${QTC_ALLOWED_HOSTS:-}" ]; then
        QTC_ALLOWED_HOSTS="127.0.0.1:$STANDIN_PORT"
        export QTC_ALLOWED_HOSTS
    fi

    echo "Odoo: http://localhost:$HTTP_PORT (database $DB; fresh demo database" \
        "login: admin / admin). Stop with Ctrl+C."
    exec python3 "$ROOT/docker/odoo_local.py" -d "$DB" --addons-path "$addons_path" \
        --http-port "$HTTP_PORT" --gevent-port "$GEVENT_PORT" \
        --db-filter "^${DB//./\\.}\$" --workers "$WORKERS" --max-cron-threads 2
}

# ------------------------------------------------------------------ main

if [ "$print_ca_bundle" = 1 ]; then
    demo_ca_bundle || die "could not create the demo stand-in's certificates"
    exit 0
fi

if [ "$MODE" != local ] && detect_docker; then
    run_docker
fi
if [ "$MODE" = docker ]; then
    report_missing
fi
if [ "$MODE" = local ]; then
    docker_problem=""  # not asked for: do not list it as missing
fi
odoo_ok=0
pg_ok=0
detect_odoo && odoo_ok=1
detect_postgres && pg_ok=1
if [ "$odoo_ok" = 1 ] && [ "$pg_ok" = 1 ]; then
    run_local
fi
report_missing
