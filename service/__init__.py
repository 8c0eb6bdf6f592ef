"""Iris classifier service: a LogisticRegression exported to numpy, served by FastAPI."""
