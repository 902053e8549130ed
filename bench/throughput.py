"""Throughput against the compute ceiling and the peers: the script form of `stream-trf bench`.

    python bench/throughput.py                       # 2,000 docs, every system, int8 fidelity
    python bench/throughput.py --soak-minutes 20     # plus the memory soak

Arguments are `stream-trf bench`'s (see `stream-trf bench --help`); results go to
bench/results/throughput-cpu.json and .png (throughput-<card> on a GPU).
"""

from __future__ import annotations

import sys

from stream_trf.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a.startswith("--precisions") for a in args):
        args = ["--precisions", "int8", *args]
    sys.exit(main(["bench", *args]))
