"""Prometheus metrics, in a registry of the server's own (so two apps in one process never mix).

Served from several processes, every process writes its values to files in the server's own
directory (prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``, which must be
set before prometheus_client is first imported) and a scrape reads them all: counts and
histograms are summed over the processes, requests in flight too, and the fleet's figures are
the latest any process set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from .fleet import Fleet

# The *_created series (a timestamp per label set) double what a scrape carries and say nothing here.
disable_created_metrics()

# Latency buckets from 1 ms (a one-source request) to 5 s (the scheduler extender's default timeout).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, directory: str | None = None) -> None:
        """``directory``: the multiprocess mode's, when several processes serve."""
        self.registry = CollectorRegistry()
        registry: CollectorRegistry | None = self.registry
        if directory is not None:
            if not getattr(values.ValueClass, "_multiprocess", False):
                raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
            MultiProcessCollector(self.registry, path=directory)
            registry = None  # each process's values are in its files, which the collector reads
        self.requests = Counter(
            "fastmatch_requests", "HTTP requests answered, by endpoint and status code", ["endpoint", "status"], registry=registry
        )
        self.latency = Histogram(
            "fastmatch_request_duration_seconds", "Time to answer a request, by endpoint", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.errors = Counter("fastmatch_errors", "Requests refused or failed, by kind", ["kind"], registry=registry)
        self.reloads = Counter("fastmatch_reloads", "Fleet reloads, by outcome (done, refused)", ["outcome"], registry=registry)
        self.targets = Gauge("fastmatch_fleet_targets", "Target devices in the fleet being served", registry=registry, multiprocess_mode="mostrecent")
        self.descriptors = Gauge("fastmatch_fleet_descriptors", "Distinct target descriptors in the fleet", registry=registry, multiprocess_mode="mostrecent")
        self.nodes = Gauge("fastmatch_fleet_nodes", "Nodes (hosts) with target devices", registry=registry, multiprocess_mode="mostrecent")
        self.generation = Gauge("fastmatch_fleet_generation", "Fleets loaded since start (1: the first)", registry=registry, multiprocess_mode="mostrecent")
        self.in_flight = Gauge("fastmatch_requests_in_flight", "Requests being answered", registry=registry, multiprocess_mode="livesum")

    def fleet_loaded(self, fleet: Fleet) -> None:
        self.targets.set(len(fleet.targets))
        self.descriptors.set(len(fleet.targets.descriptors))
        self.nodes.set(fleet.nodes.count)
        self.generation.set(fleet.generation)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
