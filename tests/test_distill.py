"""Distillation adapters for the training loop: both heads while training, a teacher asked once per image."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vitcourse.models import create_model, deit_loss
from vitcourse.train import CachedTeacher, DistillationLoss, DistillationWrapper, fit


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_wrapper_returns_both_heads_while_training_and_their_average_at_evaluation():
    torch.manual_seed(0)
    student = create_model("deit_pico_distilled_patch2_8")
    wrapper = DistillationWrapper(student)
    x = torch.randn(4, 1, 8, 8)
    z_cls, z_dist = wrapper.train()(x)
    assert z_cls.shape == z_dist.shape == (4, 10)
    wrapper.eval()
    torch.testing.assert_close(wrapper(x), student(x))
    with torch.no_grad():
        a, b = student.forward_distillation(x)
    torch.testing.assert_close(wrapper(x), (a + b) / 2)


def test_wrapper_around_a_plain_model_gives_one_output_twice():
    model = nn.Linear(3, 2)
    first, second = DistillationWrapper(model).train()(torch.randn(5, 3))
    assert first is second


def test_cached_teacher_answers_like_the_teacher_and_counts_hits():
    torch.manual_seed(0)
    teacher = create_model("resnet_pico")
    cached = CachedTeacher(teacher)
    x = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        expected = teacher.eval()(x)
    torch.testing.assert_close(cached(x), expected)
    assert (cached.misses, cached.hits) == (6, 0)
    torch.testing.assert_close(cached(x[[3, 1]]), expected[[3, 1]])
    torch.testing.assert_close(cached(torch.cat([x[:2], x[:2] + 1])), torch.cat([expected[:2], teacher(x[:2] + 1)]))
    assert (cached.misses, cached.hits) == (8, 4)
    cached.train()
    assert not cached.teacher.training  # BatchNorm statistics must not move
    full = CachedTeacher(teacher, max_entries=2)
    full(x)
    assert len(full._cache) == 2
    torch.testing.assert_close(full(x), expected)  # beyond the cache it still answers


def test_loss_is_deits_and_fit_hands_it_the_images():
    torch.manual_seed(0)
    teacher = create_model("resnet_pico").eval()
    loss = DistillationLoss(teacher, kind="soft", alpha=0.3, tau=2.0)
    z_cls, z_dist = torch.randn(4, 10), torch.randn(4, 10)
    images, labels = torch.randn(4, 1, 8, 8), torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        expected = deit_loss(z_cls, z_dist, teacher(images), labels, kind="soft", alpha=0.3, tau=2.0)
    torch.testing.assert_close(loss((z_cls, z_dist), labels, images), expected)
    with pytest.raises(ValueError, match='"hard" or "soft"'):
        DistillationLoss(teacher, kind="kl")

    data = TensorDataset(torch.randn(32, 1, 8, 8), torch.arange(32) % 10)
    seen = []

    class Spy(DistillationLoss):
        def forward(self, outputs, targets, images):
            seen.append(images.shape)
            return super().forward(outputs, targets, images)

    student = DistillationWrapper(create_model("deit_pico_distilled_patch2_8"))
    fit(student, DataLoader(data, 16), epochs=1, loss_fn=Spy(CachedTeacher(teacher)), quiet=True)
    assert seen == [(16, 1, 8, 8), (16, 1, 8, 8)]
