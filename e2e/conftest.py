"""The iris example's e2e run: kubeverify sets the stage from verify.toml; on a machine that
reaches no registry, the offline toolchain of ci/offline_kind stands in for the registry."""

from pathlib import Path

import pytest

from ci.offline_kind import env_file

TARGET = Path(__file__).resolve().parents[1] / "verify.toml"


@pytest.hookimpl(tryfirst=True)  # before kubeverify's, which reads the target
def pytest_configure(config: pytest.Config) -> None:
    config.option.target = config.option.target or str(TARGET)
    config.option.toolchain_env = config.option.toolchain_env or str(env_file())


@pytest.fixture(scope="session")
def images_too(images_too):
    """The route image (e2e/route) loaded with the service's: the layers of their common base
    image go to the nodes once."""
    from e2e import route

    return [*images_too, route.BUILT]
