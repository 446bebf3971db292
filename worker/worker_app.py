"""Entry point for `celery -A worker.worker_app:celery_app worker`: the app built from the environment."""

from .service.app import app_from_environment

celery_app = app_from_environment()
