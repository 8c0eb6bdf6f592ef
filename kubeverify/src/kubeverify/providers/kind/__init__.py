"""The kind provider: a kind cluster on this machine's Docker engine, made for the run (or reused
when one of its name and shape is there, and then never deleted); images built with Docker and
loaded into its nodes; the toolchain (kind, kubectl, node image, base image) from the options,
an offline toolchain's env file where no registry answers, or PATH and kind's published images.

Everything kubeverify does with Docker happens here. Its modules load when a run asks for kind:
the plugin reads only the options below when pytest starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from kubeverify.providers import KEEP, KUBECTL, Option
from kubeverify.providers.kind.preflight import MIN_KIND, PINNED_KIND
from kubeverify.providers.kind.toolchain import ENV_FILE_VARIABLE

if TYPE_CHECKING:
    from kubeverify.kube import KubeTarget
    from kubeverify.providers.kind.cluster import KindProjectCluster
    from kubeverify.providers.kind.toolchain import Toolchain
    from kubeverify.target import Image, Target
    from kubeverify.timing import PhaseTimer

PROXY_MODE_TIMEOUT = 20


class KindProvider:
    name: ClassVar[str] = "kind"
    builds: ClassVar[bool] = True
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "--cluster-name",
            "the kind cluster's name; kubeverify's default: the target's [cluster] name "
            "(pytest-kind's kind_cluster fixture: pytest-kind)",
            pytest_kind=True,
        ),
        Option(
            "--kind-image",
            "the kind node image; kubeverify's default: the offline toolchain's, else the one "
            "the kind release pins by digest",
            pytest_kind=True,
        ),
        Option(
            "--kind-bin",
            f"the kind to run, at least {'.'.join(map(str, MIN_KIND[:2]))} (an older one stops "
            f"the run); kubeverify's default: the offline toolchain's, else PATH's if new "
            f"enough, else kind {PINNED_KIND}, downloaded once and checksum-verified",
            pytest_kind=True,
        ),
        Option(
            "--toolchain-env",
            f"offline toolchain env file, for machines that reach no registry (default: "
            f"${ENV_FILE_VARIABLE})",
        ),
        Option(
            "--publish-port",
            "kind: publish the Service on this 127.0.0.1 port instead of the target url's (the "
            "kind config is rewritten to match)",
            kwargs={"type": int},
            instead="--base-url says where the Service is reached",
        ),
        KEEP,
        KUBECTL,
    )

    def __init__(
        self,
        target: Target,
        timer: PhaseTimer,
        *,
        toolchain_env: str | None = None,
        kind_bin: str | None = None,
        kubectl_bin: str | None = None,
        node_image: str | None = None,
        cluster_name: str | None = None,
        keep: bool = False,
        publish_port: int | None = None,
    ) -> None:
        self.target = target
        self.timer = timer
        self.toolchain_env = toolchain_env
        self.given = {"kind": kind_bin, "kubectl": kubectl_bin, "node_image": node_image}
        self.cluster_name = cluster_name
        self.keep = keep
        self.publish_port = publish_port
        self.toolchain: Toolchain | None = None
        self.cluster: KindProjectCluster | None = None
        self.built: dict[str, str] = {}  # tag -> what its build made

    @classmethod
    def wanted(cls, given: Mapping[str, Any]) -> bool:
        return True  # the default: a cluster of the run's own

    @classmethod
    def from_options(
        cls, given: Mapping[str, Any], target: Target, timer: PhaseTimer
    ) -> KindProvider:
        return cls(
            target,
            timer,
            toolchain_env=given.get("toolchain_env"),
            kind_bin=given.get("kind_bin"),
            kubectl_bin=given.get("kind_kubectl_bin"),
            node_image=given.get("kind_image"),
            cluster_name=given.get("cluster_name"),
            keep=bool(given.get("keep_cluster")),
            publish_port=given.get("publish_port"),
        )

    def up(self) -> KubeTarget:
        from kubeverify.providers.kind.cluster import KindProjectCluster
        from kubeverify.providers.kind.toolchain import detect

        given = {name: value for name, value in self.given.items() if value}
        self.toolchain = replace(detect(self.toolchain_env), **given)
        self.timer.note(f"toolchain: {self.toolchain.describe()}")
        self.cluster = KindProjectCluster(
            self.target,
            self.toolchain,
            self.timer,
            self.cluster_name,
            self.keep,
            self.publish_port,
        )
        return self.cluster.up()

    def make_available(self, image: Image, *also: Image) -> str:
        """Built from its context when the image names one, then loaded into every node that
        runs pods (when one lacks it: a kept cluster's nodes may have it already), with the
        images `also` in one `kind load`: the layers they share are saved and sent once; then
        every node Ready."""
        from kubeverify.providers.kind.image import build_target_image

        for each in (image, *also):
            if each.context is not None:
                with self.timer.phase(f"build image {each.tag}"):
                    info = build_target_image(each, self.toolchain, say=self.timer.say)
                self.built[each.tag] = info.describe()
        self.cluster.load_images([each.tag for each in (image, *also)])
        self.cluster.wait_ready()  # before anything is rolled out on them
        return image.tag

    def reach(self, url: str) -> str:
        if self.publish_port is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{self.publish_port}"))

    def facts(self) -> dict[str, str]:
        from kubeverify.providers.kind.cluster import read

        found = {"toolchain": self.toolchain.describe()}
        for name, command in (
            ("kind", [self.cluster.kind, "version"]),
            ("node_image", ["docker", "inspect", "--format", "{{.Config.Image}}",
                            self.cluster.control_plane]),
        ):  # fmt: skip
            try:
                found[name] = read(command).strip().removeprefix("kind ")
            except Exception as error:  # a fact that cannot be read is unknown, not an error
                found[name] = f"unknown ({type(error).__name__})"
        found.update({f"image {tag}": made for tag, made in self.built.items()})
        return found

    def proxy_mode(self) -> str | None:
        """kube-proxy's own answer, on the control plane's loopback (its /proxyMode)."""
        import subprocess

        try:
            said = subprocess.run(
                ["docker", "exec", self.cluster.control_plane,
                 "curl", "-s", "http://127.0.0.1:10249/proxyMode"],
                capture_output=True, text=True, timeout=PROXY_MODE_TIMEOUT, check=False,
            )  # fmt: skip
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return None
        mode = said.stdout.strip()
        return mode if said.returncode == 0 and mode else None

    def down(self) -> None:
        if self.cluster is not None:
            self.cluster.down()
