"""The compiled CPU kernel gives the eager kernel's values and gradients."""

from __future__ import annotations

import pytest
import torch

from mobiler2l_ns.teacher.hash_grid import HashGrid, can_compile


@pytest.mark.skipif(not can_compile(), reason="torch.compile needs a C++ compiler")
def test_compiled_kernel_matches_eager():
    torch.manual_seed(0)
    eager = HashGrid(num_levels=6, log2_hashmap_size=12, base_resolution=4, max_resolution=128)
    compiled = HashGrid(num_levels=6, log2_hashmap_size=12, base_resolution=4, max_resolution=128, compile_cpu=True)
    with torch.no_grad():
        eager.params.uniform_(-1, 1)
        compiled.params.copy_(eager.params)
    assert compiled.cpu_kernels.compiled
    for n in (1000, 777):  # two sizes: dynamic shapes, no recompile per batch
        x = torch.rand(n, 3)
        upstream = torch.randn(n, eager.output_dim)
        out_e, out_c = eager(x), compiled(x)
        torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-6)
        eager.params.grad = compiled.params.grad = None
        (out_e * upstream).sum().backward()
        (out_c * upstream).sum().backward()
        torch.testing.assert_close(compiled.params.grad, eager.params.grad, rtol=1e-4, atol=1e-5)
    assert compiled.cpu_kernels.compiled  # no fallback to eager happened
