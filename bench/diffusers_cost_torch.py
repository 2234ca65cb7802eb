#!/usr/bin/env python3
"""
Baseline of bench/diffusers-cost.ts: diffusers' own UNet2DModel (its code from
a checkout, stubbed around as test/fixtures/diffusers_stub.py describes) built
from a config.json with its default random initialisation, timed on PyTorch
CPU with 2 threads (TORCH_THREADS to change), no_grad, float32.

    OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=17179869184 \\
        /usr/bin/python3 bench/diffusers_cost_torch.py <diffusers>/src/diffusers config.json 1,16 5

Prints one JSON line: {batch: median seconds per forward}.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
import diffusers_stub  # noqa: E402


def main() -> None:
    src, cfg_file, batches, runs = sys.argv[1], sys.argv[2], [int(b) for b in sys.argv[3].split(",")], int(sys.argv[4])
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
    classes = diffusers_stub.import_diffusers(src)
    with open(cfg_file) as f:
        cfg = json.load(f)
    model = classes[cfg["_class_name"]](**{k: v for k, v in cfg.items() if not k.startswith("_")}).eval()
    s = cfg["sample_size"]
    out = {}
    with torch.no_grad():
        for n in batches:
            x = torch.randn(n, cfg["in_channels"], s, s)
            t = torch.full((n,), 500.0)
            model(x, t, return_dict=False)
            times = []
            for _ in range(runs):
                a = time.perf_counter()
                model(x, t, return_dict=False)
                times.append(time.perf_counter() - a)
            times.sort()
            out[n] = times[len(times) // 2]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
