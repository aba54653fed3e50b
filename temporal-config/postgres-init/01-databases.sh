#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data volume
# (/docker-entrypoint-initdb.d). Gives the platform and Temporal a database and a role each:
#   idp                              owned by role idp      (the platform's own database)
#   temporal, temporal_visibility    owned by role temporal (CREATEDB so temporal-sql-tool's
#                                    create-database step is a harmless no-op)
set -euo pipefail

: "${IDP_DB_PASSWORD:?IDP_DB_PASSWORD must be set}"
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}"

# Passwords go in as psql variables (:'var' quotes them as literals), never spliced into the SQL.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v idp_password="$IDP_DB_PASSWORD" -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE idp LOGIN PASSWORD :'idp_password';
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE idp OWNER idp;
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
