#!/usr/bin/env bash
# One-shot set-up of the demo database, run by the odoo-init service of
# docker/compose.yaml before the Odoo server starts.
#
# Creates ${QTC_DB:-qtc_demo} with every installable qtc_* addon found under
# /mnt/extra-addons, demo data included. A database that already has all of them
# installed is left alone, so restarting the stack never reinstalls anything;
# one that lacks some (an interrupted first run, a new addon) gets them installed.
# Odoo reads the connection from /etc/odoo/odoo.conf (host db, user odoo, as
# psql below) and the password, like psql, from PGPASSWORD.
set -euo pipefail

db="${QTC_DB:-qtc_demo}"
# The defaults are the containers'; the variables let the script run elsewhere.
addons_dir="${QTC_ADDONS_DIR:-/mnt/extra-addons}"
db_host="${PGHOST:-db}"
db_user="${PGUSER:-odoo}"

# Installable qtc addons, one per line. Directory names are checked against a
# strict pattern because they end up in SQL and on Odoo's command line.
list_addons() {
    python3 - "$addons_dir" <<'PY'
import ast
import pathlib
import re
import sys

for manifest in sorted(pathlib.Path(sys.argv[1]).glob("qtc_*/__manifest__.py")):
    name = manifest.parent.name
    if not re.fullmatch(r"[a-z0-9_]+", name):
        continue
    if ast.literal_eval(manifest.read_text()).get("installable", True):
        print(name)
PY
}

psql_value() {
    # Run the SQL read from stdin against database $1 and print the single value.
    local database="$1"
    shift
    psql -X -q -t -A -v ON_ERROR_STOP=1 -h "$db_host" -U "$db_user" -d "$database" "$@"
}

mapfile -t addons < <(list_addons)
if [ "${#addons[@]}" -eq 0 ]; then
    echo "odoo-init: no installable qtc_* addon under $addons_dir" >&2
    exit 1
fi
addon_list="$(IFS=,; echo "${addons[*]}")"

for _ in $(seq 1 30); do
    pg_isready -q -h "$db_host" -U "$db_user" && break
    sleep 1
done

exists="$(psql_value postgres -v db="$db" <<'SQL'
SELECT count(*) FROM pg_database WHERE datname = :'db';
SQL
)"
installed=0
if [ "$exists" = "1" ]; then
    # A database created by hand may have no Odoo tables yet: count 0 then.
    installed="$(psql_value "$db" -v names="$addon_list" 2>/dev/null <<'SQL' || echo 0
SELECT count(*) FROM ir_module_module
 WHERE state = 'installed' AND name = ANY (string_to_array(:'names', ','));
SQL
)"
fi

if [ "$installed" = "${#addons[@]}" ]; then
    echo "odoo-init: database $db is ready (${#addons[@]} qtc addons installed)"
    exit 0
fi

echo "odoo-init: installing $addon_list with demo data into database $db"
# --workers 0: a threaded server that stops after init binds no HTTP port.
exec odoo -d "$db" -i "$addon_list" --stop-after-init \
    --workers 0 --max-cron-threads 0
