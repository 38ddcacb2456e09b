#!/usr/bin/env bash
# One database and one login role per sikkerby service; each role owns only its own
# database, and no other role may connect to it.
#
# The postgres image runs this once, when it initialises an empty data directory
# (mounted into /docker-entrypoint-initdb.d by docker-compose.yml). The passwords come
# from the container's environment (see .env.example); none is written here. To change
# a password later, use ALTER ROLE: this script does not run again.
set -euo pipefail

create_service_database() {
    local name="$1" password_var="$2"
    local password="${!password_var:-}"
    # The password also goes, unescaped, into the service's database URL
    # (docker-compose.yml), so only URL-safe characters are accepted.
    if [ "${#password}" -lt 24 ] || [[ ! "$password" =~ ^[A-Za-z0-9._~-]+$ ]] \
            || [[ "${password,,}" == *change-me* ]]; then
        echo "init.sh: ${password_var} must be a generated secret of at least 24 URL-safe" \
             "characters (see .env.example)" >&2
        exit 1
    fi
    # The password is read inside psql with \getenv (psql 15+), so it is never on a command
    # line; :"name" and :'password' are quoted by psql as identifier and literal.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
         --set=name="$name" --set=password_var="$password_var" <<'SQL'
\getenv password :password_var
CREATE ROLE :"name" WITH LOGIN PASSWORD :'password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
}

create_service_database gateway GATEWAY_DB_PASSWORD
create_service_database citizens CITIZENS_DB_PASSWORD
create_service_database providers PROVIDERS_DB_PASSWORD
create_service_database activation ACTIVATION_DB_PASSWORD
create_service_database security SECURITY_DB_PASSWORD

# Nor may the service roles connect to the maintenance database.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set=maintenance_db="$POSTGRES_DB" <<'SQL'
REVOKE CONNECT ON DATABASE :"maintenance_db" FROM PUBLIC;
SQL
