#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server for the shared-history tests.
#
# The cluster is made in a temporary folder (initdb), owned by a non-root user when run as
# root (postgres refuses root), listens only on a Unix socket in that folder (no TCP), and
# is stopped and removed when the command ends. The command sees ALLIANCE_TEST_POSTGRES, a
# URL for the cluster's superuser. Without server binaries it says so and runs the command
# as it is: the PostgreSQL tests then skip (or fail, under ALLIANCE_REQUIRE_POSTGRES=1).
set -euo pipefail
bindir=""
if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    bindir="$(dirname "$(command -v pg_ctl)")"
else
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/pg_ctl" ] && bindir="$candidate"
    done
fi
if [ -z "$bindir" ]; then
    echo "PostgreSQL server binaries not found (Debian: apt-get install postgresql):" \
         "the shared-history tests will skip" >&2
    exec "$@"
fi
dir="$(mktemp -d /tmp/alliance-pg.XXXXXX)"
chmod 755 "$dir"
run_as=()
if [ "$(id -u)" = 0 ]; then
    user=postgres
    id -u "$user" >/dev/null 2>&1 || user=nobody
    chown "$user" "$dir"
    run_as=(runuser -u "$user" --)
fi
cleanup() {
    "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
"${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U alliance_admin --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
# one role must give a password (scram), so the tests can prove .pgpass and PGSERVICE work
# and that no password is ever shown; every other role is trusted on this private socket
hba="$dir/data/pg_hba.conf"
"${run_as[@]}" sh -c "{ echo 'local all alliance_pw scram-sha-256'; cat '$hba'; } > '$hba.new' && mv '$hba.new' '$hba'"
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c max_connections=60" \
    start
export ALLIANCE_TEST_POSTGRES="postgresql://alliance_admin@/postgres?host=$dir"
export ALLIANCE_TEST_POSTGRES_PASSWORD_ROLE=alliance_pw
echo "PostgreSQL test server: $("$bindir/postgres" --version) in $dir (Unix socket only)" >&2
"$@"
