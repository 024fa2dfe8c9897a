#!/usr/bin/env bash
# First start of the PostgreSQL of docker-compose.yml: the image's entrypoint
# runs this from /docker-entrypoint-initdb.d once, when the data directory
# is empty, over the local socket as POSTGRES_USER.
#
# One server, two databases, each owned by its own login role:
#   mongooseim  MongooseIM's; its schema is priv/pg.sql of the MongooseIM
#               release in use, which mongooseim-init copied to
#               /mongooseim-schema/pg.sql (deploy/mongooseim/render.sh).
#   presenced   presenced's; its schema is made by `presenced migrate`
#               (the service presenced-migrate), not here.
# The passwords come from MONGOOSEIM_DB_PASSWORD and PRESENCED_DB_PASSWORD.
# To redo all this, remove the volume postgres-data.
set -euo pipefail

: "${MONGOOSEIM_DB_PASSWORD:?MONGOOSEIM_DB_PASSWORD is empty}"
: "${PRESENCED_DB_PASSWORD:?PRESENCED_DB_PASSWORD is empty}"
schema=/mongooseim-schema/pg.sql
if [ ! -r "$schema" ]; then
	echo "10-databases.sh: no $schema (the service mongooseim-init makes it)" >&2
	exit 1
fi

# psql fills :'name' with the value of --set name=..., quoted as a literal.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
	--set mim_pw="$MONGOOSEIM_DB_PASSWORD" --set pd_pw="$PRESENCED_DB_PASSWORD" <<'SQL'
CREATE ROLE mongooseim LOGIN PASSWORD :'mim_pw';
CREATE DATABASE mongooseim OWNER mongooseim;
CREATE ROLE presenced LOGIN PASSWORD :'pd_pw';
CREATE DATABASE presenced OWNER presenced;
SQL

# The schema is created by its owner, so MongooseIM owns its tables.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username mongooseim --dbname mongooseim --file "$schema"
echo "10-databases.sh: databases mongooseim and presenced ready" >&2
