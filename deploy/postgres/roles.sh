#!/bin/bash
# Run by the postgres image on the database's first start
# (/docker-entrypoint-initdb.d): votewatch's group roles, and one login per
# process, each in the one group its job needs (README, "Database roles").
# `votewatch migrate`, run as the owner, then grants the groups their rights.
# Idempotent: roles that exist are left as they are.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v api_password="$VOTEWATCH_API_DB_PASSWORD" \
	-v projector_password="$VOTEWATCH_PROJECTOR_DB_PASSWORD" \
	-v intake_password="$VOTEWATCH_INTAKE_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN', r) FROM unnest(ARRAY['votewatch_reader', 'votewatch_projector', 'votewatch_intake']) r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
SELECT format('CREATE ROLE api LOGIN PASSWORD %L IN ROLE votewatch_reader', :'api_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'api') \gexec
SELECT format('CREATE ROLE projector LOGIN PASSWORD %L IN ROLE votewatch_projector', :'projector_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'projector') \gexec
SELECT format('CREATE ROLE intake LOGIN PASSWORD %L IN ROLE votewatch_intake', :'intake_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intake') \gexec
SQL
