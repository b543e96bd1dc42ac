"""The hash grid's torch kernel follows tiny-cuda-nn's layout, indexing and interpolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobiler2l_ns.teacher.hash_grid import TCNN_EXISTS, HashGrid, grid_levels


def tcnn_index(corner: np.ndarray, level) -> int:
    """Independent re-statement of tiny-cuda-nn's grid_index with uint32 arithmetic."""
    corner = corner.astype(np.uint32)
    if level.dense:
        index = int(corner[0]) + int(corner[1]) * level.resolution + int(corner[2]) * level.resolution**2
    else:
        with np.errstate(over="ignore"):
            primes = np.array([1, 2654435761, 805459861], dtype=np.uint32)
            hashed = corner * primes
        index = int(hashed[0] ^ hashed[1] ^ hashed[2])
    return index % level.size + level.offset


def test_level_layout_matches_tcnn_rules():
    levels = grid_levels(num_levels=16, log2_hashmap_size=14, base_resolution=16, per_level_scale=1.5)
    assert levels[0].resolution == 16 and levels[0].dense and levels[0].size == 16**3
    assert all(lv.size <= 2**14 and lv.size % 8 == 0 for lv in levels)
    assert not levels[-1].dense and levels[-1].size == 2**14
    offsets = [lv.offset for lv in levels]
    assert offsets == list(np.cumsum([0] + [lv.size for lv in levels[:-1]]))


def test_torch_kernel_trilinear_lookup_equals_reference():
    torch.manual_seed(0)
    grid = HashGrid(num_levels=4, features_per_level=2, log2_hashmap_size=10, base_resolution=4, max_resolution=64)
    with torch.no_grad():
        grid.params.copy_(torch.randn_like(grid.params))
    table = grid.params.detach().view(-1, 2).numpy()
    x = torch.rand(64, 3)
    out = grid(x).detach().numpy()  # [64, 8]
    assert any(lv.dense for lv in grid.levels) and any(not lv.dense for lv in grid.levels)
    for li, level in enumerate(grid.levels):
        pos = x.numpy().astype(np.float64) * level.scale + 0.5
        cell = np.floor(pos)
        frac = pos - cell
        for n in range(x.shape[0]):
            expected = np.zeros(2)
            for c in range(8):
                bits = np.array([(c >> d) & 1 for d in range(3)])
                weight = np.prod(np.where(bits == 1, frac[n], 1 - frac[n]))
                expected += weight * table[tcnn_index(cell[n] + bits, level)]
            np.testing.assert_allclose(out[n, 2 * li : 2 * li + 2], expected, rtol=1e-4, atol=1e-5)


def test_gradients_are_the_trilinear_weights_of_the_looked_up_entries():
    """d(sum_l,f g_lf * out_lf) / d table[row, f] = sum of g_lf * weight over the corners hashed to row."""
    grid = HashGrid(num_levels=2, log2_hashmap_size=8, base_resolution=4, max_resolution=16)
    assert any(lv.dense for lv in grid.levels) and any(not lv.dense for lv in grid.levels)
    x = torch.tensor([[0.3, 0.71, 0.52], [0.9, 0.05, 0.33]])
    upstream = torch.randn(2, grid.output_dim, generator=torch.Generator().manual_seed(0))
    (grid(x) * upstream).sum().backward()
    expected = np.zeros((grid.params.numel() // 2, 2))
    for n in range(x.shape[0]):
        for li, level in enumerate(grid.levels):
            pos = x[n].numpy().astype(np.float64) * level.scale + 0.5
            cell = np.floor(pos)
            frac = pos - cell
            for c in range(8):
                bits = np.array([(c >> d) & 1 for d in range(3)])
                weight = np.prod(np.where(bits == 1, frac, 1 - frac))
                expected[tcnn_index(cell + bits, level)] += weight * upstream[n, 2 * li : 2 * li + 2].numpy()
    np.testing.assert_allclose(grid.params.grad.view(-1, 2).numpy(), expected, rtol=1e-4, atol=1e-6)
    assert np.count_nonzero(expected) > 0


@pytest.mark.skipif(not (TCNN_EXISTS and torch.cuda.is_available()), reason="needs tiny-cuda-nn and CUDA")
def test_tcnn_and_torch_kernels_agree_on_shared_parameters():  # pragma: no cover - GPU machines only
    grid = HashGrid(implementation="auto").cuda()
    with torch.no_grad():
        grid.params.uniform_(-1, 1)
    x = torch.rand(4096, 3, device="cuda")
    fast = grid(x)
    grid.implementation = "torch"
    reference = grid(x)
    torch.testing.assert_close(fast, reference, rtol=1e-3, atol=1e-3)
