"""Iris classifier service: a LogisticRegression exported to plain numbers, served by FastAPI."""
