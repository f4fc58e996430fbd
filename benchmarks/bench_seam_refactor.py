"""ResNet-32 eval forward before and after the MVM seam (issue 21), one process, rounds
interleaved: per variant the median time of each and the per-round ratio new/old (median and
quartiles).

The old package is a copy of the library at commit ff723f6 (before the seam) renamed to
``aimcsim_old``: ``git -C /work/main archive ff723f6 aimcsim kernels | tar -x -C OLD``, move
``kernels`` into ``aimcsim``, rename the folder and its imports to ``aimcsim_old``, and pass
``OLD`` as the first argument.

    python benchmarks/bench_seam_refactor.py OLD [batch] [repeats]
"""
import statistics
import sys
import time

if len(sys.argv) < 2:
    sys.exit(__doc__)
sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402

import aimcsim  # noqa: E402
import aimcsim_old  # noqa: E402
from aimcsim.models import build_model  # noqa: E402

batch = int(sys.argv[2]) if len(sys.argv) > 2 else 128
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 7
torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model("resnet32").eval()
x = torch.randn(batch, 3, 32, 32)


def variants(pkg):
    from importlib import import_module
    tiles = import_module(pkg.__name__ + ".tiles")
    cfg = tiles.AnalogConfig
    return {"default": cfg(), "per_image": cfg().replace(**{"periphery.input_scaling": "per_image"}),
            "noise_off": cfg.ideal(), "per_mvm": cfg(read_noise_sampling="per_mvm")}


calls = {}
for label, pkg in (("old", aimcsim_old), ("new", aimcsim)):
    for name, config in variants(pkg).items():
        analog = pkg.convert_to_analog(model, config).eval()
        pkg.program(analog, 0)
        pkg.set_time(analog, 3600.0)
        calls[(name, label)] = (lambda a=analog: a(x))
with torch.no_grad():
    for fn in calls.values():
        fn()
    times = {k: [] for k in calls}
    for r in range(repeats):
        for name in ("default", "per_image", "noise_off", "per_mvm"):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for label in order:
                start = time.perf_counter()
                calls[(name, label)]()
                times[(name, label)].append(time.perf_counter() - start)
print(f"batch {batch}, {repeats} rounds, 1 thread")
print("| variant | old (ms) | new (ms) | new/old median | quartiles |")
print("|---|---:|---:|---:|---|")
for name in ("default", "per_image", "noise_off", "per_mvm"):
    old, new = times[(name, "old")], times[(name, "new")]
    ratios = sorted(n / o for n, o in zip(new, old))
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    print(f"| {name} | {1e3 * statistics.median(old):.1f} | {1e3 * statistics.median(new):.1f} | "
          f"{statistics.median(ratios):.3f} | {q[0]:.3f}-{q[2]:.3f} |")
