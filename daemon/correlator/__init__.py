"""Correlation as its own stage: the store's feed in, alerts and their outbox rows out."""
