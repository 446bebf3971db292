"""Celery settings for Flower in docker-compose.ha.yml: the broker through the Sentinels."""
import os

broker_url = os.environ["FLOWER_BROKER_URL"]
broker_transport_options = {"master_name": os.environ.get("REDIS_MASTER_NAME", "autotag")}
