"""Provision a registry-free kind cluster toolchain from Debian packages only.

Run as ``python3 -m ci.offline_kind ensure`` from the repository root.
The background facts live in the project's offline-kind notes; every phase
here is cached under the cache dir, keyed by the Debian versions and project
files it was built from.
"""
