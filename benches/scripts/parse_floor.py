"""Issue 13's parse floor: msgspec decoding the given fleet files into the loader's line
structs (``self`` and ``compatible`` kept as raw bytes), the cyclic GC off.

    PYTHONPATH=src python benches/scripts/parse_floor.py S T
"""

import gc
import sys
import time

from fastmatch.formats.fleet_lines import _DECODER

gc.disable()
start = time.perf_counter()
for path in sys.argv[1:]:
    with open(path, "rb") as handle:
        lines = _DECODER.decode_lines(handle.read())
    del lines
print(f"parse floor {time.perf_counter() - start:.2f} s")
