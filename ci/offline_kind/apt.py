"""Phase 1: host packages and apt sources; helpers to query and fetch packages.

trixie is added with Pin-Priority 100 so nothing on the host upgrades by
itself: we only ever fetch from it by explicit version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fsutil
from .phases import Context, Phase
from .proc import PhaseError, Runner

SOURCES_FILE = Path("/etc/apt/sources.list.d/iris-offline-kind.sources")
PREFERENCES_FILE = Path("/etc/apt/preferences.d/iris-offline-kind-trixie")
LISTS_DIR = Path("/var/lib/apt/lists")

# debootstrap (root file systems), iptables (dockerd's bridge networking), gcc with libc6-dev
# (the static pause binary) and libseccomp-dev with pkg-config (runc links libseccomp through cgo,
# as kind's build does). Go itself is the machine's (see gomod.py).
HOST_PACKAGES = [
    "ca-certificates",
    "debootstrap",
    "gcc",
    "iptables",
    "libc6-dev",
    "libseccomp-dev",
    "pkg-config",
    "xz-utils",
]

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


# ---------------------------------------------------------------- sources


def parse_deb822(text: str) -> list[dict[str, str]]:
    paragraphs, current, last = [], {}, None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, None
            continue
        if raw[0] in " \t" and last:
            current[last] += "\n" + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if sep:
            last = name.strip().lower()
            current[last] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def parse_one_line(text: str) -> list[dict[str, str]]:
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        options = {}
        m = re.match(r"^(deb|deb-src)\s+\[([^\]]*)\]\s+(.*)$", line)
        if m:
            kind, opts, rest = m.groups()
            for opt in opts.split():
                k, _, v = opt.partition("=")
                options[k.lower()] = v
        else:
            kind, _, rest = line.partition(" ")
        parts = rest.split()
        if kind not in ("deb", "deb-src") or len(parts) < 2:
            continue
        entry = {
            "types": kind,
            "uris": parts[0],
            "suites": parts[1],
            "components": " ".join(parts[2:]),
        }
        if "signed-by" in options:
            entry["signed-by"] = options["signed-by"]
        entries.append(entry)
    return entries


def find_mirror(entries: Iterable[dict[str, str]], suite: str = "bookworm") -> tuple[str, str]:
    """URI and keyring of the entry that serves `suite` binary packages."""
    for entry in entries:
        if "deb" not in entry.get("types", "").split():
            continue
        if entry.get("enabled", "yes").lower() == "no":
            continue
        if suite in entry.get("suites", "").split():
            uri = entry.get("uris", "").split()[0]
            signed_by = entry.get("signed-by", "").strip() or DEFAULT_KEYRING
            if "\n" in signed_by or "BEGIN PGP" in signed_by:
                signed_by = DEFAULT_KEYRING  # inline key block: fall back to the keyring
            return uri, signed_by
    return DEFAULT_MIRROR, DEFAULT_KEYRING


def read_host_sources(skip: Path = SOURCES_FILE) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    main_list = Path("/etc/apt/sources.list")
    if main_list.is_file():
        entries += parse_one_line(main_list.read_text())
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f == skip:
                continue
            if f.suffix == ".sources":
                entries += parse_deb822(f.read_text())
            elif f.suffix == ".list":
                entries += parse_one_line(f.read_text())
    return entries


def render_sources(uri: str, signed_by: str) -> str:
    return (
        "# Managed by ci/offline_kind (python3 -m ci.offline_kind ensure).\n"
        "# trixie: Docker 26, fetched by explicit version only (see the pin).\n"
        "Types: deb\n"
        f"URIs: {uri}\n"
        "Suites: trixie\n"
        "Components: main\n"
        f"Signed-By: {signed_by}\n"
    )


PREFERENCES = (
    "# Managed by ci/offline_kind: never upgrade the host from trixie by itself.\n"
    "Package: *\n"
    "Pin: release n=trixie\n"
    "Pin-Priority: 100\n"
)


# ---------------------------------------------------------------- queries


@dataclass(frozen=True)
class Offer:
    """A binary package's version offered by a suite."""

    package: str
    version: str
    suite: str  # e.g. "trixie", "bookworm-security"


def pick(offers: Iterable[Offer], package: str, suite: str) -> str:
    for offer in offers:
        if offer.package == package and offer.suite == suite:
            return offer.version
    raise KeyError(f"{package} not offered by suite {suite}")


def parse_dpkg_query(text: str) -> dict[str, str]:
    """`dpkg-query -W -f '${Package} ${db:Status-Abbrev} ${Version}\\n'` -> installed versions."""
    installed = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "ii":
            installed[parts[0].split(":")[0]] = parts[2]
    return installed


def parse_policy(text: str) -> list[Offer]:
    """Binary package offers from `apt-cache policy` (dpkg status lines skipped)."""
    offers: list[Offer] = []
    package = version = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            package, version = line[:-1], None
            continue
        m = re.match(r"^ (?: {4}|\*\*\* )(\S+) -?\d+$", line)
        if m:
            version = m.group(1)
            continue
        m = re.match(r"^ {8}-?\d+ \S+ (\S+) \S+ Packages$", line)
        if m and package and version:
            offers.append(Offer(package, version, m.group(1).split("/")[0]))
    return offers


# This machine's apt keeps no package cache (a docker-clean setting), so each
# apt-cache run would re-parse every index (2 s or more). A cache file of our
# own, which apt refreshes by itself when the lists change, avoids that.
_APT_CACHE_OPTIONS: list[str] = []


def use_cache_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _APT_CACHE_OPTIONS[:] = [
        "-o",
        f"Dir::Cache::pkgcache={directory / 'pkgcache.bin'}",
    ]


def apt_cache(run: Runner, *args: str) -> str:
    return run.out(["apt-cache", *_APT_CACHE_OPTIONS, *args])


def versions(run: Runner, packages: list[str], suite: str) -> dict[str, str]:
    offers = parse_policy(apt_cache(run, "policy", *packages))
    try:
        return {p: pick(offers, p, suite) for p in packages}
    except KeyError as exc:
        raise PhaseError(
            run.phase,
            f"{exc.args[0]}; are the apt sources in place? "
            f"(run ensure, or --force apt to refresh the package lists)",
        ) from None


def installed(run: Runner, packages: list[str]) -> dict[str, str]:
    out = run.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev} ${Version}\n", *packages],
        capture=True,
        check=False,
    ).stdout.decode()
    return parse_dpkg_query(out)


def download(run: Runner, pinned: dict[str, str], dest: Path) -> list[Path]:
    """apt-get download exact versions into dest; returns the .deb files."""
    dest.mkdir(parents=True, exist_ok=True)
    specs = [f"{p}={v}" for p, v in sorted(pinned.items())]
    try:
        run.run(["apt-get", "download", *specs], cwd=dest)
    except PhaseError as exc:
        exc.args = (str(exc) + "\nhint: the package lists may be stale; re-run with --force apt",)
        raise
    debs = sorted(dest.glob("*.deb"))
    if len(debs) != len(specs):
        raise PhaseError(run.phase, f"expected {len(specs)} .deb files in {dest}, got {len(debs)}")
    return debs


# ---------------------------------------------------------------- phase


class AptPhase(Phase):
    name = "apt"
    what = "host packages and apt sources (trixie pinned to 100)"
    recipe = 2

    def _desired(self) -> tuple[str, str]:
        uri, signed_by = find_mirror(read_host_sources())
        return render_sources(uri, signed_by), PREFERENCES

    def inputs(self, ctx: Context, run: Runner) -> dict[str, Any]:
        sources, prefs = self._desired()
        return {"sources": sources, "preferences": prefs, "packages": HOST_PACKAGES}

    def _in_place(self, run: Runner) -> bool:
        sources, prefs = self._desired()
        try:
            if SOURCES_FILE.read_text() != sources or PREFERENCES_FILE.read_text() != prefs:
                return False
        except OSError:
            return False
        if not any(LISTS_DIR.glob("*_dists_trixie_main_binary-*_Packages*")):
            return False
        return set(installed(run, HOST_PACKAGES)) >= set(HOST_PACKAGES)

    def verify(self, ctx: Context, run: Runner, outputs: dict[str, Any]) -> bool:
        return self._in_place(run)

    def build(self, ctx: Context, run: Runner, work: Path, final: Path) -> dict[str, Any]:
        sources, prefs = self._desired()
        fsutil.atomic_write_text(SOURCES_FILE, sources, 0o644)
        fsutil.atomic_write_text(PREFERENCES_FILE, prefs, 0o644)
        run.run(["apt-get", "update"], timeout=600)
        run.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *HOST_PACKAGES], timeout=1200
        )
        missing = set(HOST_PACKAGES) - set(installed(run, HOST_PACKAGES))
        if missing:
            raise PhaseError(self.name, f"packages still missing: {sorted(missing)}")
        return {}
