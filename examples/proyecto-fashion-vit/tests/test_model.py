"""The config's model: right shapes, an attention map per image, and it learns."""

from __future__ import annotations

import pytest
import torch

from src.errors import ProjectError
from src.models.attention import attention_maps, deletion_check, grid_size
from src.models.train_model import build_model


def test_logits_and_attention_maps(processed):
    model = build_model(processed)
    images = torch.randn(3, 1, 28, 28)
    logits, maps = attention_maps(model, images)
    assert logits.shape == (3, 10)
    assert maps.shape == (3, *grid_size(model))
    assert torch.allclose(maps.sum(dim=(1, 2)), torch.ones(3), atol=1e-5)


def test_a_few_steps_lower_the_loss(processed):
    torch.manual_seed(0)
    model = build_model(processed)
    images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_deletion_check_fields(processed):
    model = build_model(processed).eval()
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    result = deletion_check(model, images, labels, fraction=0.25, fill=0.0)
    assert set(result) == {
        "images",
        "fraction",
        "accuracy",
        "accuracy_without_top",
        "accuracy_without_random",
    }
    assert 0.2 < result["fraction"] < 0.3


def test_unknown_preset_is_a_clear_error(processed):
    broken = {**processed, "model": {**processed["model"], "preset": "vit_enormous"}}
    with pytest.raises(ProjectError, match="vit_enormous"):
        build_model(broken)
