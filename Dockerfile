# One image for the ingress and the worker; docker-compose.yml runs both from it.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY models/bundle ./models/bundle
RUN pip install --no-cache-dir . && useradd --system --uid 10001 autotag
ENV AUTOTAG_MODEL=/app/models/bundle \
    AUTOTAG_DATA_DIR=/tmp/autotag
USER autotag
EXPOSE 8080
CMD ["autotag", "serve", "--host", "0.0.0.0", "--port", "8080"]
