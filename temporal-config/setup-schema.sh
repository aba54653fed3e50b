#!/usr/bin/env bash
# One-shot job (service temporal-schema, image temporalio/admin-tools): creates Temporal's two
# PostgreSQL databases if missing and brings their schemas up to the versions this admin-tools
# release ships, which must match the server's. Safe to re-run: create-database ignores an
# existing database, setup-schema -v 0.0 leaves a newer schema alone, update-schema applies only
# the missing versions.
set -euo pipefail

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS must be set}"
: "${POSTGRES_USER:?POSTGRES_USER must be set}"
: "${POSTGRES_PWD:?POSTGRES_PWD must be set}"
DB_PORT="${DB_PORT:-5432}"
DBNAME="${DBNAME:-temporal}"
VISIBILITY_DBNAME="${VISIBILITY_DBNAME:-temporal_visibility}"
SCHEMA_ROOT="${SCHEMA_ROOT:-/etc/temporal/schema/postgresql/v12}"
# The tool reads the password from SQL_PASSWORD, which keeps it off the process list.
export SQL_PASSWORD="$POSTGRES_PWD"

sql_tool() {
  temporal-sql-tool --plugin postgres12 --endpoint "$POSTGRES_SEEDS" --port "$DB_PORT" --user "$POSTGRES_USER" "$@"
}

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${DB_PORT}"
for attempt in $(seq 1 60); do
  if pg_isready -q -h "$POSTGRES_SEEDS" -p "$DB_PORT"; then break; fi
  if [ "$attempt" -eq 60 ]; then echo "PostgreSQL did not become ready" >&2; exit 1; fi
  sleep 2
done

setup() {
  local db="$1" versioned="$2"
  echo "schema: ${db} <- ${versioned}"
  sql_tool --database "$db" create-database
  sql_tool --database "$db" setup-schema -v 0.0
  sql_tool --database "$db" update-schema -d "$versioned"
}

setup "$DBNAME" "${SCHEMA_ROOT}/temporal/versioned"
setup "$VISIBILITY_DBNAME" "${SCHEMA_ROOT}/visibility/versioned"
echo "Temporal schemas are up to date"
