"""The standard checks, run on any target with no test code of its own:
`python -m kubeverify TARGET.toml`, which runs pytest on this folder with `--target TARGET.toml`."""
