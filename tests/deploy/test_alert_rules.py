"""The alert rules (deploy/prometheus/rules/) through Debian's ``promtool``, and the places that
load them: the compose Prometheus and the Kubernetes PrometheusRule generated from them.

promtool is required, not optional: without it these tests FAIL (``.ci/run`` installs Debian's
``prometheus`` package). A live Prometheus evaluating these rules against a real worker is
tests/integration/test_operations.py.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from prometheus_harness import prometheus_binary
from test_deploy_files import (
    COMPOSE,
    DEPLOY,
    K8S,
    ROOT,
    exported_metrics,
    lag_aggregation_problems,
    load_yaml,
    metric_names,
    unknown_metrics,
)

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "stream-trf.rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "stream-trf.rules.test.yml"
PROMETHEUSRULE = K8S / "monitoring" / "prometheusrule.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
SEVERITIES = {"warning", "critical"}


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_binary("promtool"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(RULES)["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def alerts(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rules if "alert" in r]


def test_promtool_checks_the_rules(rules: list[dict[str, Any]]) -> None:
    done = promtool("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    done = promtool("test", "rules", RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize(
    ("change", "old", "new", "failing"),
    [
        # summing over the workers counts each partition once per worker
        ("lag summed over workers", "max by (topic, partition)", "sum by (topic, partition)", ""),
        ("no persistence", "for: 15m", "for: 1m", "StreamTrfAgreementBelowBound"),
        ("a floor on the lag too low", "> 1000", "> 10", "StreamTrfConsumerLagGrowing"),
        (
            "dead letters per worker",
            "sum by (model) (rate(stream_trf_dead",
            "(rate(stream_trf_dead",
            "",
        ),
        ("any job", 'up{job=~"stream-trf.*"} == 0', "up == 0", "StreamTrfWorkerDown"),
    ],
)
def test_the_unit_tests_catch_a_broken_rule(
    tmp_path: Path, change: str, old: str, new: str, failing: str
) -> None:
    shutil.copytree(PROMETHEUS, tmp_path / "prometheus")
    broken = tmp_path / "prometheus" / "rules" / RULES.name
    text = broken.read_text(encoding="utf-8")
    assert old in text, change
    broken.write_text(text.replace(old, new), encoding="utf-8")
    done = promtool("test", "rules", tmp_path / "prometheus" / "tests" / RULE_TESTS.name)
    assert done.returncode != 0, f"promtool's unit tests missed: {change}"
    assert failing in done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test(alerts: list[dict[str, Any]]) -> None:
    cases = [c for t in load_yaml(RULE_TESTS)["tests"] for c in t.get("alert_rule_test", [])]
    for alert in alerts:
        mine = [c for c in cases if c["alertname"] == alert["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{alert['alert']} never fires in a test"
        assert any(not c["exp_alerts"] for c in mine), f"{alert['alert']} is never quiet"
    assert {c["alertname"] for c in cases} == {a["alert"] for a in alerts}
    assert load_yaml(RULE_TESTS)["rule_files"] == ["../rules/" + RULES.name]


def test_the_rules_query_exported_metrics_and_count_each_partition_once(
    rules: list[dict[str, Any]],
) -> None:
    recorded = [r["record"] for r in rules if "record" in r]
    exprs = [r["expr"] for r in rules]
    # the recording rules' names (level:metric:operations) are not the worker's metrics
    raw = [re.sub("|".join(map(re.escape, recorded)), "recorded", e) for e in exprs]
    assert unknown_metrics(raw, exported_metrics()) == set()
    used = set().union(*(metric_names(e) for e in raw))
    assert {"stream_trf_consumer_lag", "stream_trf_drift_alert"} <= used
    for expr in exprs:
        assert lag_aggregation_problems(expr) == [], expr


def test_alerts_say_how_bad_what_and_where_to_read_more(alerts: list[dict[str, Any]]) -> None:
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names))
    wanted = {  # the list: drift, agreement, dead letters, lag, worker down, p99
        "StreamTrfDriftAlert",
        "StreamTrfAgreementBelowBound",
        "StreamTrfDeadLetters",
        "StreamTrfConsumerLagGrowing",
        "StreamTrfWorkerDown",
        "StreamTrfNoWindows",
        "StreamTrfLatencyP99High",
    }
    assert wanted <= set(names)
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for alert in alerts:
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], alert["alert"]
        page, _, anchor = notes["runbook"].partition("#")
        assert (ROOT / page) == OPERATIONS and anchor == alert["alert"].lower()
        assert anchor in headings, f"docs/operations.md has no section {alert['alert']}"


def _prometheusrule_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_prometheusrule", PROMETHEUS / "make_prometheusrule.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_prometheusrule_is_generated_from_the_rules_file() -> None:
    maker = _prometheusrule_module()
    text = RULES.read_text(encoding="utf-8")
    assert PROMETHEUSRULE.read_text(encoding="utf-8") == maker.render(text), (
        "deploy/k8s/monitoring/prometheusrule.yaml is out of date: run "
        "python deploy/prometheus/make_prometheusrule.py"
    )
    doc = load_yaml(PROMETHEUSRULE)
    assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert doc["spec"] == yaml.safe_load(text)  # the same groups, rule for rule
    # a change to the rules shows as a difference
    assert maker.render(text.replace("> 1000", "> 999")) != maker.render(text)
    with pytest.raises(ValueError):
        maker.render("rules: []\n")
    kustomization = load_yaml(K8S / "monitoring" / "kustomization.yaml")
    assert PROMETHEUSRULE.name in kustomization["resources"]


def container_path(service: dict[str, Any], host: Path) -> PurePosixPath | None:
    """Where a host file appears inside a compose service, through its bind mounts."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        source_path = (COMPOSE / source).resolve()
        if host.resolve() == source_path or source_path in host.resolve().parents:
            return PurePosixPath(target) / host.resolve().relative_to(source_path).as_posix()
    return None


def test_the_compose_prometheus_loads_the_rules() -> None:
    config = COMPOSE / "prometheus.yml"
    done = promtool("check", "config", config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout and RULES.name in done.stdout
    # the relative path names the same file inside the container
    service = load_yaml(COMPOSE / "docker-compose.yml")["services"]["prometheus"]
    flag = next(a for a in service["command"] if a.startswith("--config.file="))
    in_container = PurePosixPath(flag.split("=", 1)[1])
    assert container_path(service, config) == in_container
    (rule_file,) = load_yaml(config)["rule_files"]
    resolved = PurePosixPath(
        *_normalise((in_container.parent / rule_file).parts)
    )  # what Prometheus opens
    assert container_path(service, RULES) == resolved
    assert (config.parent / rule_file).resolve() == RULES.resolve()  # what promtool opened


def _normalise(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        elif part != ".":
            out.append(part)
    return out


def test_ci_installs_promtool_like_chromium() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (line,) = [ln for ln in script.splitlines() if "/usr/bin/promtool" in ln]
    assert "/usr/bin/prometheus" in line and re.search(r"\bprometheus\b\"", line), line
    assert "apt-get install" in script
