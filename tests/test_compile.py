"""``torch.compile`` of a converted model, train and eval mode, in a fresh process (the failure
this guards against, Dynamo tracing into Numba's dispatcher, showed only in a fresh process):
the compiled model gives the eager results up to float tolerance, and importing aimcsim does
not import TorchDynamo."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from aimcsim.nn.compile import eager_under_compile

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import copy
    import sys
    import torch
    from torch import nn
    import aimcsim
    from aimcsim.nn import HardwareAwareConfig
    from aimcsim.tiles import AnalogConfig

    # the analog layers make their compiler-opaque forward lazily: no TorchDynamo at import
    assert "torch._dynamo" not in sys.modules

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 8 * 8, 10))
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])


    def sgd_step(model, forward, seed):
        torch.manual_seed(seed)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach(), [p.detach().clone() for p in model.parameters()]


    for name, config, hwa in [
            ("ideal", AnalogConfig.ideal(), HardwareAwareConfig(weight_noise=0.0)),
            ("default", AnalogConfig(), HardwareAwareConfig())]:
        eager = aimcsim.convert_to_analog(net, config, hwa=hwa).train()
        compiled_model = copy.deepcopy(eager)
        compiled = torch.compile(compiled_model)
        for step in range(2):  # the second step runs the cached graphs
            loss_e, params_e = sgd_step(eager, eager, step)
            loss_c, params_c = sgd_step(compiled_model, compiled, step)
            assert torch.isfinite(loss_c), name
            torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-6)
            for a, b in zip(params_c, params_e):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        for model in (eager, compiled_model):
            model.eval()
            aimcsim.program(model, seed=0)
            aimcsim.set_time(model, 3600.0)
        with torch.no_grad():
            out_e = eager(x)
            out_c = compiled(x)
        assert out_c.shape == (4, 10) and torch.isfinite(out_c).all(), name
        torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-5)
    print("compile ok")
''')


def test_compiled_converted_model_trains_and_evaluates_in_a_fresh_process():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "compile ok" in done.stdout


def test_eager_under_compile_changes_nothing_outside_compile():
    def forward(x: torch.Tensor) -> torch.Tensor:
        """double"""
        return 2 * x

    wrapped = eager_under_compile(forward)
    assert wrapped.__doc__ == "double" and wrapped.__name__ == "forward"
    torch.testing.assert_close(wrapped(torch.ones(3)), torch.full((3,), 2.0))
