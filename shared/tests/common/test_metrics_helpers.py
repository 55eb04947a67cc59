"""The shared metrics helpers: own registries, exposition, timing, HTTP labels."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, Counter
from prometheus_client.parser import text_string_to_metric_families

from trollama.common.metrics import HttpMetrics, metrics_response, new_registry, timed


def samples(registry: object) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics_response(registry)  # type: ignore[arg-type]
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_each_service_has_its_own_registry() -> None:
    first, second = new_registry(), new_registry()
    Counter("trollama_demo", "demo", registry=first).inc(3)
    Counter("trollama_demo", "demo", registry=second).inc()  # same name, no clash
    assert samples(first)[("trollama_demo_total", frozenset())] == 3
    assert samples(second)[("trollama_demo_total", frozenset())] == 1
    assert REGISTRY.get_sample_value("trollama_demo_total") is None


def test_response_is_prometheus_text() -> None:
    registry = new_registry()
    Counter("trollama_things", "Things seen.", ["kind"], registry=registry).labels("a").inc()
    body, content_type = metrics_response(registry)
    assert content_type.startswith("text/plain; version=")
    assert b"# HELP trollama_things_total Things seen." in body
    assert b'trollama_things_total{kind="a"} 1.0' in body


def test_http_metrics_bound_their_labels() -> None:
    registry = new_registry()
    http = HttpMetrics(registry, "brain")
    http.observe("GET", "/api/requests/{request_id}", 200, 0.02)
    http.observe("BREW", "unmatched", 405, 0.01)
    got = samples(registry)
    labels = {"service": "brain", "route": "/api/requests/{request_id}", "method": "GET"}
    assert (
        got[("trollama_http_requests_total", frozenset({**labels, "status": "200"}.items()))] == 1
    )
    assert got[("trollama_http_request_seconds_count", frozenset(labels.items()))] == 1
    odd = {"service": "brain", "method": "OTHER", "route": "unmatched", "status": "405"}
    assert got[("trollama_http_requests_total", frozenset(odd.items()))] == 1


def test_timed_observes_even_when_the_block_raises() -> None:
    seen: list[float] = []
    with timed(seen.append):
        pass
    with pytest.raises(ValueError, match="boom"), timed(seen.append):
        raise ValueError("boom")
    assert len(seen) == 2 and all(s >= 0 for s in seen)
