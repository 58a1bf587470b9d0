#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth for the user
# `postgres`: uses the one that is there, starts an installed but stopped one, or installs
# Debian's and starts it. Then waits until it accepts connections.
set -euo pipefail

url="${WRISTBAND_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && psql "$url" -qtAc 'select 1' >/dev/null 2>&1; }

if command -v pg_isready >/dev/null && ready; then
    echo "PostgreSQL is up at 127.0.0.1:5432"
    exit 0
fi

if ! command -v pg_ctlcluster >/dev/null; then
    echo "installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq postgresql postgresql-client >/dev/null
fi

# Start every installed cluster, and let local TCP connections in without a password.
for conf in /etc/postgresql/*/*/pg_hba.conf; do
    [ -f "$conf" ] || continue
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf"; then
        sed -i '1i host all all 127.0.0.1/32 trust' "$conf" 2>/dev/null || sudo sed -i '1i host all all 127.0.0.1/32 trust' "$conf"
    fi
    version=$(basename "$(dirname "$(dirname "$conf")")")
    cluster=$(basename "$(dirname "$conf")")
    pg_ctlcluster "$version" "$cluster" start 2>/dev/null || pg_ctlcluster "$version" "$cluster" reload 2>/dev/null || true
done

for _ in $(seq 1 60); do
    if ready; then
        echo "PostgreSQL is up at 127.0.0.1:5432"
        exit 0
    fi
    sleep 1
done
echo "PostgreSQL did not come up at 127.0.0.1:5432" >&2
exit 1
