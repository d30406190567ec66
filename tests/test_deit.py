"""DeiT: the distillation token, its two heads, and the soft and hard distillation losses."""

import pytest
import torch
import torch.nn.functional as F

from vitcourse.models import (
    DistilledViT,
    count_parameters,
    create_model,
    deit_loss,
    hard_distillation_loss,
    soft_distillation_loss,
)


def test_distilled_model_has_two_tokens_and_averages_its_heads():
    model = create_model("deit_pico_distilled_patch2_8").eval()
    assert isinstance(model, DistilledViT) and model.num_prefix_tokens == 2
    plain = create_model("vit_pico_patch2_8")
    # one more token (its position too) and one more head: (1 + 1) * D + (D + 1) * K
    D, K = 32, 10
    assert count_parameters(model) - count_parameters(plain) == 2 * D + (D + 1) * K
    x = torch.randn(3, 1, 8, 8)
    z_cls, z_dist = model.forward_distillation(x)
    assert z_cls.shape == z_dist.shape == (3, 10)
    torch.testing.assert_close(model(x), (z_cls + z_dist) / 2)
    assert not torch.allclose(z_cls, z_dist)  # two different heads on two different tokens
    logits, attentions = model(x, return_attention=True)
    assert attentions[0].shape == (3, 2, 18, 18)  # [CLS], [DIST] and 16 patches
    torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)


def test_soft_loss_is_the_formula():
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    tau = 2.5
    p_teacher = (teacher / tau).softmax(-1)
    log_p_student = (student / tau).log_softmax(-1)
    expected = tau**2 * (p_teacher * (p_teacher.log() - log_p_student)).sum(-1).mean()
    torch.testing.assert_close(soft_distillation_loss(student, teacher, tau), expected)


def test_soft_loss_is_zero_only_when_the_distributions_agree():
    logits = torch.randn(4, 5)
    assert soft_distillation_loss(logits, logits.clone()) == pytest.approx(0.0, abs=1e-6)
    assert soft_distillation_loss(logits + 7.0, logits) == pytest.approx(0.0, abs=1e-6)  # shift-invariant
    assert soft_distillation_loss(torch.randn(4, 5), logits) > 0


def test_distillation_losses_do_not_train_the_teacher():
    student = torch.randn(4, 5, requires_grad=True)
    teacher = torch.randn(4, 5, requires_grad=True)
    (soft_distillation_loss(student, teacher) + hard_distillation_loss(student, teacher)).backward()
    assert student.grad is not None and teacher.grad is None


def test_hard_loss_targets_the_teachers_top_class():
    student, teacher = torch.randn(6, 4), torch.randn(6, 4)
    expected = F.cross_entropy(student, teacher.argmax(-1))
    torch.testing.assert_close(hard_distillation_loss(student, teacher), expected)
    confident = F.one_hot(teacher.argmax(-1), 4).float() * 50
    assert hard_distillation_loss(confident, teacher) < 1e-6


def test_deit_loss_weights_the_two_terms():
    z_cls, z_dist, z_teacher = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    labels = torch.tensor([0, 3, 1])
    label_loss = F.cross_entropy(z_cls, labels)
    hard = hard_distillation_loss(z_dist, z_teacher)
    soft = soft_distillation_loss(z_dist, z_teacher, tau=2.0)
    torch.testing.assert_close(deit_loss(z_cls, z_dist, z_teacher, labels), (label_loss + hard) / 2)
    torch.testing.assert_close(deit_loss(z_cls, z_dist, z_teacher, labels, alpha=0.0), label_loss)
    torch.testing.assert_close(
        deit_loss(z_cls, z_dist, z_teacher, labels, kind="soft", alpha=0.3, tau=2.0), 0.7 * label_loss + 0.3 * soft
    )


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: soft_distillation_loss(torch.randn(2, 3), torch.randn(2, 4)), "same shape"),
        (lambda: hard_distillation_loss(torch.randn(2, 3), torch.randn(3, 3)), "same shape"),
        (lambda: soft_distillation_loss(torch.randn(2, 3), torch.randn(2, 3), tau=0), "positive"),
        (lambda: deit_loss(*torch.randn(3, 2, 3), torch.zeros(2, dtype=torch.long), kind="kl"), '"hard" or "soft"'),
        (lambda: deit_loss(*torch.randn(3, 2, 3), torch.zeros(2, dtype=torch.long), alpha=2), r"\[0, 1\]"),
    ],
)
def test_loss_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_distillation_head_learns_the_cnn_teacher():
    """The slides' two steps on 64 random images: (1) train a CNN teacher on the labels,
    (2) train a DeiT student with hard distillation; its [DIST] head must come to agree
    with the teacher."""
    torch.manual_seed(0)
    images, labels = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    teacher = create_model("resnet_pico")
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=1e-2)
    for _ in range(20):
        loss = F.cross_entropy(teacher(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        teacher_logits = teacher.eval()(images)
    assert len(teacher_logits.argmax(-1).unique()) >= 5  # a teacher with opinions, not a constant

    student = create_model("deit_pico_distilled_patch2_8")
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-3)

    def agreement():
        with torch.no_grad():
            _, z_dist = student.forward_distillation(images)
        return (z_dist.argmax(-1) == teacher_logits.argmax(-1)).float().mean().item()

    before = agreement()
    for _ in range(80):
        z_cls, z_dist = student.forward_distillation(images)
        loss = deit_loss(z_cls, z_dist, teacher_logits, labels, kind="hard", alpha=0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert agreement() > max(0.8, before + 0.3)
