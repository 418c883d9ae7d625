"""docker-compose.yml's monitoring holds together without a Docker engine: Prometheus scrapes
the worker and the API where they serve metrics, Grafana gets the data source and the
dashboard the files name, and the dashboard asks only for the metrics the code defines.
(tests/test_metrics.py checks those metrics are served; `make check-compose` the schemas.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from activities import metrics as worker_metrics
from settings import Settings
from starter.services import metrics as api_metrics

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "monitoring"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return dict(_yaml(ROOT / "docker-compose.yml"))


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((MONITORING / "grafana" / "dashboards" / "orderflow.json").read_text()))


def test_prometheus_scrapes_the_worker_and_the_api_where_they_serve() -> None:
    defaults = Settings()
    services = _compose()["services"]
    jobs = {job["job_name"]: job for job in _yaml(MONITORING / "prometheus.yml")["scrape_configs"]}
    # Every replica of a scaled service: its name resolves to each (DNS service discovery).
    [worker] = jobs["orderflow-worker"]["dns_sd_configs"]
    [api] = jobs["orderflow-api"]["dns_sd_configs"]
    assert (worker["names"], worker["port"]) == (["worker"], defaults.worker_metrics_port)
    assert (api["names"], api["port"]) == (["api"], defaults.api_metrics_port)
    assert jobs["orderflow-api"]["metrics_path"] == "/metrics"
    assert services["api"]["environment"]["ORDERFLOW_API_METRICS_HOST"] == "0.0.0.0"
    # The worker listens beyond its container (the default is loopback only).
    worker_env = services["worker"]["environment"]
    assert worker_env["ORDERFLOW_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert services["api"]["environment"]["ORDERFLOW_API_HOST"] == "0.0.0.0"


def test_grafana_is_provisioned_with_the_data_source_and_dashboard_it_mounts() -> None:
    services = _compose()["services"]
    mounts = {}
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source, target, *_ = volume.split(":")
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
                mounts[target] = ROOT / source
    assert mounts["/etc/prometheus/prometheus.yml"] == MONITORING / "prometheus.yml"
    provisioning = mounts["/etc/grafana/provisioning"]
    [source] = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    [provider] = _yaml(provisioning / "dashboards" / "orderflow.yml")["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert (dashboards / "orderflow.json").exists()

    board = _dashboard()
    for panel in board["panels"]:
        for target in [panel, *panel["targets"]]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
    env = services["grafana"]["environment"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/orderflow.json"


def test_the_dashboard_asks_only_for_metrics_the_code_defines() -> None:
    histograms = set(worker_metrics.HISTOGRAMS)
    defined = {*worker_metrics.COUNTERS, *histograms, "http_requests_total"}  # + instrumentator's
    for counter in (
        api_metrics.FEEDBACK_ANSWERS,
        api_metrics.ACTION_OUTCOMES,
        api_metrics.SUPPORT_CONTACTS,
    ):
        defined.add(f"{counter._name}_total")
    board = _dashboard()
    asked = {
        re.sub(r"_(bucket|sum|count)$", "", name) if name.startswith(tuple(histograms)) else name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:orderflow|http)_\w+)\b", target["expr"])
    }
    assert asked - defined == set()
    assert defined - asked == set()  # every business metric has a panel
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
