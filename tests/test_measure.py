"""Measuring forward passes: the allocation tracker counts what it should, once."""

import pytest
import torch
from torch import nn

from vitcourse.layers import EncoderBlock
from vitcourse.measure import AllocationTracker, Cost, forward_cost, peak_memory, time_call

MB = 1000 * 1000


def test_two_live_tensors_make_the_peak():
    def work():
        a = torch.ones(1000, 1000)  # 4 MB
        b = a * 2  # 4 MB more while a lives
        del a
        c = b @ b  # b and c: 8 MB
        return c.sum()

    assert peak_memory(work) == 8 * MB + 4  # + the 4-byte sum


def test_inputs_in_place_results_and_views_are_not_new_memory():
    x = torch.ones(1000, 1000)
    with torch.no_grad(), AllocationTracker() as tracker:
        x.add_(1)  # in place: same storage as the input
        view = x.view(-1)  # a view of the input
        y = torch.zeros(1000)  # 4 kB, new
        y_view = y[:10]  # a view of a tracked tensor: no new bytes
        del view, y_view
    assert tracker.allocations == 1 and tracker.peak == 4000
    del y
    assert tracker.live == 0  # freed once the last tensor using it is gone


def test_a_score_matrix_grows_with_the_square_of_the_tokens():
    def scores(n):
        q = torch.randn(n, 8)
        return lambda: (q @ q.T).softmax(-1)

    small, large = peak_memory(scores(100)), peak_memory(scores(200))
    assert small == 2 * 100 * 100 * 4  # the scores and their softmax
    assert large == 4 * small


def test_fused_attention_never_holds_the_score_matrix():
    torch.manual_seed(0)
    block = EncoderBlock(32, 2).eval()
    x = torch.randn(1, 256, 32)
    fused = peak_memory(lambda: block(x))
    manual = peak_memory(lambda: block(x, return_attention=True))
    assert manual - fused >= 2 * 256 * 256 * 4  # (h=2) × N² float32 weights, at least


def test_forward_cost_and_time_call():
    module = nn.Linear(64, 64).train()
    cost = forward_cost(module, torch.randn(32, 64), repeats=3)
    assert isinstance(cost, Cost) and cost.seconds > 0 and cost.cpu_seconds >= 0
    assert cost.peak_bytes == 32 * 64 * 4
    assert module.training  # restored
    wall, cpu = time_call(lambda: torch.ones(10), repeats=2, warmup=0)
    assert wall >= 0 and cpu >= 0
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, repeats=0)


def test_block_costs_grow_quadratically_for_vit_and_linearly_for_swin():
    from vitcourse.measure import attention_block_costs

    torch.set_num_threads(1)
    frame = attention_block_costs([8, 16], embed_dim=16, num_heads=2, window_size=4, repeats=1)
    assert len(frame) == 6 and set(frame["block"]) == {"ViT (fusionada)", "ViT (manual)", "Swin (SW-MSA)"}
    peak = frame.pivot(index="side", columns="block", values="peak_bytes")
    manual_growth = peak.loc[16, "ViT (manual)"] / peak.loc[8, "ViT (manual)"]
    swin_growth = peak.loc[16, "Swin (SW-MSA)"] / peak.loc[8, "Swin (SW-MSA)"]
    assert manual_growth > 8  # 4x the tokens: the N² weights grow 16x
    assert swin_growth == pytest.approx(4, rel=0.25)  # ... the windows' M²·N only 4x
    omega = frame.pivot(index="side", columns="block", values="omega")
    assert omega.loc[16, "ViT (manual)"] == 4 * 256 * 16**2 + 2 * 256**2 * 16
    with pytest.raises(ValueError, match="multiple of window_size"):
        attention_block_costs([6], window_size=4)
