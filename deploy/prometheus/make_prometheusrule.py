"""Write the Kubernetes PrometheusRule from the Prometheus rules file, its one source.

    python deploy/prometheus/make_prometheusrule.py          # rewrite it
    python deploy/prometheus/make_prometheusrule.py --check  # exit 1 if it is out of date

The rules file's ``groups:`` block becomes the PrometheusRule's ``spec`` as text, indented, so
its comments and layout carry over and the two parse to the same groups
(tests/deploy/test_alert_rules.py checks both). Standard library only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
RULES = DEPLOY / "prometheus" / "rules" / "stream-trf.rules.yml"
TARGET = DEPLOY / "k8s" / "monitoring" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/rules/stream-trf.rules.yml by
#   python deploy/prometheus/make_prometheusrule.py
# Do not edit here: edit the rules file and run the script again.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: stream-trf
  labels:
    app.kubernetes.io/name: stream-trf
    # Prometheus Operator loads the PrometheusRules its ruleSelector matches: add the label
    # yours selects (kube-prometheus-stack: `release: <its release name>`).
    role: alert-rules
spec:
"""


def render(rules_text: str) -> str:
    """The PrometheusRule manifest for a rules file's text (its ``groups:`` on)."""
    lines = rules_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("groups:")), None)
    if start is None:
        raise ValueError("the rules file has no top-level `groups:`")
    body = [("  " + line) if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is up to date")
    args = parser.parse_args(argv)
    wanted = render(RULES.read_text(encoding="utf-8"))
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if args.check:
        if current != wanted:
            print(f"{TARGET} is out of date: run python {Path(__file__).as_posix()}")
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
