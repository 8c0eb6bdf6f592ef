"""Project CI tooling (no third-party imports: it runs before any venv exists)."""
