"""An independent check of a drain plan, as written (the JSON document), against the fleets.

It shares nothing with the planners but the device records: compatibility is decided by the
plain-Python reference (``fastmatch.engine.match_reference``), one pair at a time for each
distinct pair of descriptors, and every other rule is counted again from the moves:

- every move leaves a drained host for a compatible target off the drained hosts;
- no target takes more than its capacity, no host more than its limit;
- a VM moves whole, onto one host, in one wave, or is listed unplaced with all its devices;
- every device on a drained host is moved or listed unplaced, with a reason;
- waves hold at most ``max_parallel`` VMs, and at most ``max_per_host`` out of or into a host;
- the summary's counts are the moves' and the unplaced VMs'.
"""

from __future__ import annotations

import collections
from typing import Any, Iterable, Mapping

import numpy as np

from ..devices import DeviceSet
from ..engine import match_reference


def check_plan(
    document: Mapping[str, Any],
    sources: DeviceSet,
    targets: DeviceSet,
    drain: Iterable[str],
    *,
    host_limits: Mapping[str, int] | None = None,
    max_parallel: int | None = None,
    max_per_host: int | None = None,
) -> list[str]:
    """What is wrong with the plan ``document`` (empty: nothing)."""
    problems: list[str] = []
    drained = set(drain)
    policy = sources.policy
    source_at = {d: i for i, d in enumerate(sources.ids)}
    target_at = {d: j for j, d in enumerate(targets.ids)}

    def vm_of(i: int) -> str:
        return sources.vms[i] or sources.ids[i]

    moves = list(document.get("moves", []))
    moved: dict[int, dict[str, Any]] = {}
    into: collections.Counter[int] = collections.Counter()
    pairs: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for n, move in enumerate(moves):
        i, j = source_at.get(move.get("source")), target_at.get(move.get("target"))
        if i is None or j is None:
            problems.append(f"move {n}: unknown source or target {move.get('source')!r} -> {move.get('target')!r}")
            continue
        if i in moved:
            problems.append(f"move {n}: source {sources.ids[i]!r} moves twice")
        moved[i] = move
        if sources.hosts[i] not in drained:
            problems.append(f"move {n}: source {sources.ids[i]!r} is not on a drained host")
        if targets.hosts[j] in drained:
            problems.append(f"move {n}: target {targets.ids[j]!r} is on a drained host")
        if move.get("from_host") != sources.hosts[i] or move.get("to_host") != targets.hosts[j]:
            problems.append(f"move {n}: hosts {move.get('from_host')!r} -> {move.get('to_host')!r} are not the devices'")
        if move.get("vm") != vm_of(i):
            problems.append(f"move {n}: vm {move.get('vm')!r} is not the device's ({vm_of(i)!r})")
        into[j] += 1
        pairs[(int(sources.descriptor_of[i]), int(targets.descriptor_of[j]))].append(n)
        if sources.ids[i] == targets.ids[j]:
            problems.append(f"move {n}: {sources.ids[i]!r} moves to itself")

    # Compatibility: the reference, once per distinct pair of descriptors (hosts and ids, the only
    # device-level rules, are checked above and by the set semantics).
    for (ds, dt), where in pairs.items():
        n = where[0]
        i, j = source_at[moves[n]["source"]], target_at[moves[n]["target"]]
        one = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)  # capacity 1, descriptor 0
        one_source = DeviceSet(policy, ["s"], [""], [""], *one, [sources.descriptors[ds]])
        one_target = DeviceSet(policy, ["t"], [""], [""], *one, [targets.descriptors[dt]])
        reasons = int(match_reference(one_source, one_target, policy).reasons[0, 0])
        if reasons:
            problems.append(f"move {n} (and {len(where) - 1} like it): {sources.ids[i]!r} -> {targets.ids[j]!r} is not compatible")

    for j, count in into.items():
        if count > targets.capacities[j]:
            problems.append(f"target {targets.ids[j]!r} takes {count} devices, its capacity is {targets.capacities[j]}")
    per_host = collections.Counter(targets.hosts[j] for j in into.elements())
    for host, limit in (host_limits or {}).items():
        if per_host.get(host, 0) > limit:
            problems.append(f"host {host!r} takes {per_host[host]} new devices, its limit is {limit}")

    # VMs whole, drained hosts emptied.
    on_drained = [i for i, h in enumerate(sources.hosts) if h in drained]
    devices_of_vm: dict[str, list[int]] = collections.defaultdict(list)
    for i in on_drained:
        devices_of_vm[vm_of(i)].append(i)
    unplaced = {}
    for entry in document.get("unplaced", []):
        if entry.get("vm") in unplaced:
            problems.append(f"VM {entry.get('vm')!r} is listed unplaced twice")
        unplaced[entry.get("vm")] = entry
    for vm, devices in devices_of_vm.items():
        moved_here = [i for i in devices if i in moved]
        if vm in unplaced:
            entry = unplaced[vm]
            if moved_here:
                problems.append(f"VM {vm!r} is listed unplaced but {len(moved_here)} of its devices move")
            if sorted(entry.get("sources", [])) != sorted(sources.ids[i] for i in devices):
                problems.append(f"VM {vm!r}: unplaced sources {entry.get('sources')!r} are not its devices")
            if not entry.get("reasons") or not all(isinstance(r, str) and r for r in entry["reasons"]):
                problems.append(f"VM {vm!r} is unplaced without a reason")
        elif len(moved_here) != len(devices):
            problems.append(f"VM {vm!r}: {len(moved_here)} of its {len(devices)} devices move and it is not listed unplaced")
        else:
            # A target without a host is a host of its own.
            hosts = {moved[i]["to_host"] or "target " + moved[i]["target"] for i in devices}
            waves = {moved[i]["wave"] for i in devices}
            if len(hosts) != 1:
                problems.append(f"VM {vm!r} is split over hosts {sorted(hosts)!r}")
            if len(waves) != 1:
                problems.append(f"VM {vm!r} moves in waves {sorted(waves)!r}")
    for vm in unplaced:
        if vm not in devices_of_vm:
            problems.append(f"VM {vm!r} is listed unplaced but has no device on a drained host")

    # Waves.
    vm_moves: dict[Any, Any] = {}
    for move in moves:
        vm_moves.setdefault(move.get("vm"), move)
    wave_numbers = sorted({m.get("wave") for m in vm_moves.values()})
    if wave_numbers and (
        not all(isinstance(w, int) and w >= 1 for w in wave_numbers) or wave_numbers != list(range(1, len(wave_numbers) + 1))
    ):
        problems.append(f"waves are not numbered 1, 2, ...: {wave_numbers[:10]!r}")
    per_wave = collections.Counter(m.get("wave") for m in vm_moves.values())
    if max_parallel is not None:
        for wave, count in per_wave.items():
            if count > max_parallel:
                problems.append(f"wave {wave} migrates {count} VMs, more than max_parallel {max_parallel}")
    if max_per_host is not None:
        out_count = collections.Counter((m.get("wave"), m.get("from_host")) for m in vm_moves.values())
        in_count = collections.Counter((m.get("wave"), m.get("to_host")) for m in vm_moves.values())
        for kind, counter in (("out of", out_count), ("into", in_count)):
            for (wave, host), count in counter.items():
                if count > max_per_host:
                    problems.append(f"wave {wave} migrates {count} VMs {kind} host {host!r}, more than max_per_host {max_per_host}")

    summary = document.get("summary", {})
    placed_vms = len(devices_of_vm) - len(unplaced)
    if summary.get("vms", {}).get("placed") != placed_vms or summary.get("vms", {}).get("total") != len(devices_of_vm):
        problems.append(f"summary's VMs {summary.get('vms')!r} are not the plan's ({placed_vms} of {len(devices_of_vm)} placed)")
    if summary.get("devices", {}).get("placed") != len(moves) or summary.get("devices", {}).get("total") != len(on_drained):
        problems.append(f"summary's devices {summary.get('devices')!r} are not the plan's ({len(moves)} of {len(on_drained)} moved)")
    return problems
