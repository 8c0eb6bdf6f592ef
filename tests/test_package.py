"""kubeverify's distribution as a package index would get it: built from ./kubeverify, checked
by twine, the wheel holding the kubeverify package alone with its entry points, one version
said alike by the metadata, the changelog and `--version`. (`nox -s example` installs this
wheel in a clean venv and verifies the echo example from it, on real clusters.)"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

import kubeverify
from ci import package


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return package.build(tmp_path_factory.mktemp("dist"))


def test_the_wheel_holds_kubeverify_alone_with_its_entry_points(built):
    wheel, _ = built
    assert package.wheel_problems(wheel) == []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"kubeverify-{package.version()}.dist-info/METADATA").decode()
    assert not [name for name in names if name.startswith(("service/", "tests/", "e2e/"))]
    assert "kubeverify/providers/kind/cluster.py" in names
    assert "Classifier: Framework :: Pytest" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: locust" in metadata
    assert 'Requires-Dist: locust>=2.24; extra == "locust"' in metadata
    assert metadata.split("\n\n", 1)[1].startswith("# kubeverify")  # the package page


def test_the_sdist_holds_the_changelog_and_the_sources(built):
    _, sdist = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "src/kubeverify/plugin.py"} <= names


def test_a_wheel_holding_another_package_is_refused(tmp_path, built):
    wheel, _ = built
    tampered = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("service/__init__.py", "")
    assert package.wheel_problems(tampered) == [
        "service/__init__.py is neither the kubeverify package nor its metadata"
    ]


def test_one_version_is_said_by_the_metadata_the_changelog_and_the_command():
    assert kubeverify.__version__ == package.version()
    changelog = (package.PROJECT / "CHANGELOG.md").read_text()
    assert re.findall(r"^## (\S+)", changelog, re.M)[0] == package.version()
    said = subprocess.run(
        [sys.executable, "-m", "kubeverify", "--version"], capture_output=True, text=True
    )
    assert said.stdout == f"kubeverify {package.version()}\n"
