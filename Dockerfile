# One image for the ingress and the worker; docker-compose.yml runs both from it. The embedded
# Redis (the `embedded` extra) stays out: the image talks to the Redis the deployment runs.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY models/bundle ./models/bundle
# /var/lib/autotag is where a named volume is mounted: owned by the service user here, so the
# volume starts out writable by it
RUN pip install --no-cache-dir . && useradd --system --uid 10001 autotag \
    && mkdir -p /var/lib/autotag && chown autotag /var/lib/autotag
ENV AUTOTAG_MODEL=/app/models/bundle \
    AUTOTAG_DATA_DIR=/var/lib/autotag
USER autotag
VOLUME /var/lib/autotag
EXPOSE 8080
CMD ["autotag", "serve", "--host", "0.0.0.0", "--port", "8080"]
