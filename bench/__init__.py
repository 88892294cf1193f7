"""Benchmarks: the engine side by side with raw Celery on the same Redis (`python -m bench`)."""
