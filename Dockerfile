# One image for all five processes: the gateway (the default command), the four
# services (docker-compose.yml picks each one's app factory with `command`) and the
# one-shot `sikkerby migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A fixed, unprivileged uid/gid. docker-compose.yml may run the containers under another
# uid (APP_UID) so that they can read the signing key file mounted from the host.
RUN groupadd --system --gid 10001 sikkerby \
 && useradd --system --uid 10001 --gid sikkerby --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin sikkerby

# The project only, without the test extras; the source is removed after the install so
# that every process imports the installed package.
WORKDIR /tmp/sikkerby
COPY pyproject.toml ./
COPY services ./services
COPY gateway ./gateway
COPY migrations ./migrations
RUN pip install . \
 && rm -rf /tmp/sikkerby

WORKDIR /app
USER sikkerby:sikkerby
EXPOSE 8000

CMD ["python", "-m", "uvicorn", "--factory", "gateway.app:create_app", \
     "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
