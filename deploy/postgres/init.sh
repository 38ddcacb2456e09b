#!/usr/bin/env bash
# One database and two login roles per sikkerby service:
#   <service>_owner  owns the database and everything in it; only `sikkerby migrate` (the
#                    one-shot `migrate` service in docker-compose.yml) connects as it.
#   <service>        the role the service itself connects as; it owns nothing, and may
#                    connect to its own database only.
# No other role may connect to a service's database. The service's role gets its table
# privileges from the migration: after every run, `sikkerby migrate` applies
# migrations.common.application_role_grants as the owner (grants cover the tables that
# exist, so they are applied afresh after each migration). As a non-owner it cannot
# disable, drop or replace the audit log's append-only trigger.
#
# The postgres image runs this once, when it initialises an empty data directory
# (mounted into /docker-entrypoint-initdb.d by docker-compose.yml). The passwords come
# from the container's environment (see .env.example); none is written here. To change
# a password later, use ALTER ROLE: this script does not run again.
set -euo pipefail

check_password() {
    local password_var="$1"
    local password="${!password_var:-}"
    # The password also goes, unescaped, into a database URL (docker-compose.yml), so
    # only URL-safe characters are accepted.
    if [ "${#password}" -lt 24 ] || [[ ! "$password" =~ ^[A-Za-z0-9._~-]+$ ]] \
            || [[ "${password,,}" == *change-me* ]]; then
        echo "init.sh: ${password_var} must be a generated secret of at least 24 URL-safe" \
             "characters (see .env.example)" >&2
        exit 1
    fi
}

create_service_database() {
    local name="$1" owner_password_var="$2" password_var="$3"
    check_password "$owner_password_var"
    check_password "$password_var"
    # The service is given its own password, never the owner's.
    if [ "${!owner_password_var}" = "${!password_var}" ]; then
        echo "init.sh: ${owner_password_var} and ${password_var} must differ" >&2
        exit 1
    fi
    # The passwords are read inside psql with \getenv (psql 15+), so they are never on a
    # command line; :"name" and :'password' are quoted by psql as identifier and literal.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
         --set=name="$name" --set=owner="${name}_owner" \
         --set=owner_password_var="$owner_password_var" \
         --set=password_var="$password_var" <<'SQL'
\getenv owner_password :owner_password_var
\getenv password :password_var
CREATE ROLE :"owner" WITH LOGIN PASSWORD :'owner_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE ROLE :"name" WITH LOGIN PASSWORD :'password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
CREATE DATABASE :"name" OWNER :"owner";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"owner";
GRANT CONNECT ON DATABASE :"name" TO :"name";
SQL
}

create_service_database gateway GATEWAY_DB_OWNER_PASSWORD GATEWAY_DB_PASSWORD
create_service_database citizens CITIZENS_DB_OWNER_PASSWORD CITIZENS_DB_PASSWORD
create_service_database providers PROVIDERS_DB_OWNER_PASSWORD PROVIDERS_DB_PASSWORD
create_service_database activation ACTIVATION_DB_OWNER_PASSWORD ACTIVATION_DB_PASSWORD
create_service_database security SECURITY_DB_OWNER_PASSWORD SECURITY_DB_PASSWORD

# Nor may the service roles connect to the maintenance database.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set=maintenance_db="$POSTGRES_DB" <<'SQL'
REVOKE CONNECT ON DATABASE :"maintenance_db" FROM PUBLIC;
SQL
