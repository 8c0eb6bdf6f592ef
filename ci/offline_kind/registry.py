"""Whether this machine needs the offline toolchain: the same choice kubeverify's kind provider
makes (`KUBEVERIFY_TOOLCHAIN`, else whether the public registry answers), asked here with the
standard library alone, since the toolchain is built before any venv exists.
`tests/test_offline_kind.py` holds the two to the same variable, address and answer."""

from __future__ import annotations

import urllib.error
import urllib.request

CHOICE_VARIABLE = "KUBEVERIFY_TOOLCHAIN"
REGISTRY_PROBE_URL = "https://registry-1.docker.io/v2/"


def registry_reachable(url: str = REGISTRY_PROBE_URL, timeout: float = 5.0) -> bool:
    """True when the public registry answers at all; a 401 is an answer."""
    try:
        urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True
