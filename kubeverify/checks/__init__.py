"""The standard checks, run on any target with no test code of its own:
`python -m kubeverify TARGET.toml` or `pytest --pyargs kubeverify.checks --target TARGET.toml`."""
