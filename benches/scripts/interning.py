"""Cold interning of a fleet directory's two files: new ``DeviceSet``s each round (nothing
kept from an earlier match), ``intern()`` timed alone, with the cyclic GC on and off.

    PYTHONPATH=src python benches/scripts/interning.py .benchmarks/fleets/30000x30000-...
"""

import gc
import sys
import time

import fastmatch
from fastmatch.intern import intern

directory = sys.argv[1]
for gc_off in (False, True, False, True):
    sources = fastmatch.load(f"{directory}/sources.jsonl")
    targets = fastmatch.load(f"{directory}/targets.jsonl")
    if gc_off:
        gc.disable()
    start = time.perf_counter()
    intern(sources, targets, fastmatch.Policy.default())
    seconds = time.perf_counter() - start
    gc.enable()
    rate = (len(sources.descriptors) + len(targets.descriptors)) / seconds
    print(f"gc {'off' if gc_off else 'on '} {seconds:.3f} s  {rate:,.0f} descriptors/s", flush=True)
