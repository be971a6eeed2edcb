#!/bin/sh
# Entrypoint of the PostgreSQL images .ci/postgres-image/build builds, behaving like the official
# postgres image's as far as the tests (and Testcontainers.PostgreSql) rely on it:
#   - first start: initdb from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, with a temporary
#     server that listens on the Unix socket only, so a readiness probe over TCP (pg_isready -h
#     localhost, what Testcontainers runs) cannot succeed before the database exists;
#   - then the real server in the foreground, listening everywhere (scram-sha-256 over TCP);
#   - `docker run IMAGE -c fsync=off` passes the options on to postgres.
set -eu

if [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
  exec "$@"
fi
shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

as_postgres() {
  runuser -u postgres -- "$@"
}

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "docker-entrypoint: POSTGRES_PASSWORD must be set (TCP connections use scram-sha-256)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  # C.UTF-8 where the C library has it (as the tests' local cluster), else plain C.
  as_postgres initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" >/dev/null 2>&1 ||
    { rm -rf "${PGDATA:?}"/*; as_postgres initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile"; }
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"

  as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
      -v db="$POSTGRES_DB" -c 'CREATE DATABASE :"db"'
  fi
  as_postgres pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
  echo "docker-entrypoint: PostgreSQL init process complete; ready for start up."
fi

exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
