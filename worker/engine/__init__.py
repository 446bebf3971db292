"""The tagging engine: text cleaning, countries, topics, the Tagger, training and measuring (no Redis, no Celery)."""
