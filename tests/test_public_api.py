"""kubeverify's public API and its shape: what users and the examples may import is
`kubeverify.__all__` (and `kubeverify.locust.__all__`), and the code beside it imports nothing
else; importing the package loads none of its heavy dependencies; its modules import one
another without a cycle; and where the cluster comes from stays inside the providers: no
other module runs Docker or asks which provider it has."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import kubeverify
import kubeverify.locust

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "kubeverify" / "src"
USERS = ("e2e", "loadtest", "bench", "examples", "ci")

PUBLIC = {
    "__version__",
    # what to verify
    "Target", "TargetError", "Image", "Split", "SplitGroup", "load_target",
    # the stage and where its cluster comes from
    "Stage", "Provider", "Option", "KindProvider", "ExistingClusterProvider", "PreflightError",
    "KubeTarget", "Deployment",
    "render_manifests",
    # the suites
    "Replicas", "Scaling", "Balance", "Resilience", "Affinity", "Splits", "Shutdown",
    # verdicts
    "Verdict", "ErrorRates", "Shares", "no_failures", "verdict_from_json", "balance_verdict",
    "health_verdict", "answers_by_pod", "drain_under_traffic", "fullest_node", "drain_node",
    "EvictionRefused", "schedulable_workers",
    "fresh_connection_draws", "keep_alive_draws", "split_verdict", "judge_split", "objects_of",
    "sequential_design", "simulate_sequential", "rejection_rate", "split_design", "split_draws",
    "worst_splits",
    "worst_shares",
    # traffic, waiting, timing, processes, diagnostics
    "Endpoint", "BackgroundTraffic", "fresh_connection_requests", "wait_until_every_pod_answers",
    "wait_until", "Observation", "DeadlineExceeded", "PhaseTimer", "format_table",
    "interrupt_on_termination", "stop_process", "cluster_state", "termination_text",
}  # fmt: skip
PUBLIC_LOCUST = {"OVERRUN_S", "aggregated", "headless_command", "listeners", "run", "started"}


def test_the_public_api_is_what_it_was_said_to_be_and_every_name_resolves():
    assert set(kubeverify.__all__) == PUBLIC
    assert set(kubeverify.locust.__all__) == PUBLIC_LOCUST
    for name in kubeverify.__all__:
        assert getattr(kubeverify, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'suites_of_old'"):
        _ = kubeverify.suites_of_old


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import in a file: names empty for `import x`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
    return found


@pytest.mark.parametrize("folder", USERS)
def test_the_code_beside_kubeverify_imports_only_its_public_names(folder):
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for module, names, line in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module == "kubeverify":
                wrong += [f"{where}: {name}" for name in names if name not in PUBLIC]
            elif module == "kubeverify.locust":
                wrong += [f"{where}: locust.{name}" for name in names if name not in PUBLIC_LOCUST]
            elif module.startswith("kubeverify."):
                wrong.append(f"{where}: {module} (not public)")
    assert wrong == []


def test_importing_kubeverify_or_its_plugin_loads_no_heavy_dependency():
    """pytest loads the plugin in every run of an environment that has it: kubernetes, scipy,
    numpy, httpx, matplotlib and Locust load when a check first needs them."""
    code = (
        "import sys, kubeverify, kubeverify.plugin, kubeverify.locust\n"
        "heavy = {'kubernetes', 'scipy', 'numpy', 'httpx', 'matplotlib', 'locust', 'gevent'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert said.stdout.strip() == "[]"


def import_graph() -> dict[str, set[str]]:
    """kubeverify's modules and the kubeverify modules each imports (at its top or in a
    function: a late import is still a dependency)."""
    modules = {}
    for path in sorted((SOURCE / "kubeverify").rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        graph[name] = set()
        for module, names, _ in _imports(path):
            if not module.startswith("kubeverify"):
                continue
            submodules = {f"{module}.{n}" for n in names} & modules.keys()
            graph[name] |= submodules or ({module} & modules.keys())
        graph[name].discard(name)
    return graph


def test_kubeverifys_modules_import_one_another_without_a_cycle():
    graph = import_graph()
    done, visiting, cycles = set(), [], []

    def visit(module: str) -> None:
        if module in visiting:
            cycles.append([*visiting[visiting.index(module) :], module])
            return
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert cycles == []


def test_the_providers_are_at_the_edge():
    """Only the plugin (which chooses) and the providers themselves import a provider; the
    seam, `kubeverify.providers`, is what the rest may know."""
    graph = import_graph()
    edge = {"kubeverify.providers.kind", "kubeverify.providers.existing"}
    reaching = {
        module
        for module, imported in graph.items()
        if any(i.startswith(tuple(edge)) for i in imported)
        and not module.startswith("kubeverify.providers.")
    }
    assert reaching == set()
    # Nothing outside the providers imports from them but their seam.
    for module, imported in graph.items():
        if not module.startswith("kubeverify.providers"):
            assert imported <= (graph.keys() - {m for m in graph if m.startswith(tuple(edge))})


def test_no_module_but_the_kind_provider_runs_docker_or_asks_which_provider_it_has():
    wrong = []
    for path in sorted((SOURCE / "kubeverify").rglob("*.py")):
        if "providers/kind" in path.as_posix():
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == "docker":
                wrong.append(f"{path.name}:{node.lineno}: runs docker")
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "isinstance"
                and "Provider" in ast.unparse(node.args[1])
            ):
                wrong.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("cluster", "toolchain")
                and "stage" in ast.unparse(node.value)
            ):
                wrong.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert wrong == []
