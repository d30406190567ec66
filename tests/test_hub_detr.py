"""detr_from_hf: Hugging Face's DetrForObjectDetection into our DETR, same outputs."""

import pytest
import torch

from vitcourse.hub.detr import detr_from_hf
from vitcourse.hub.mapping import ConversionError


def hf_detr(layer_type="basic", aux=False, **overrides):
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    backbone = ResNetConfig(embedding_size=12, hidden_sizes=[16, 24, 40, 56], depths=[1, 2, 1, 1],
                            layer_type=layer_type, out_features=["stage4"])  # fmt: skip
    config = DetrConfig(
        backbone_config=backbone, use_timm_backbone=False, use_pretrained_backbone=False, d_model=36,
        encoder_layers=2, decoder_layers=2, encoder_attention_heads=3, decoder_attention_heads=3,
        encoder_ffn_dim=37, decoder_ffn_dim=37, num_queries=7, num_labels=5, auxiliary_loss=aux, **overrides,
    )  # fmt: skip
    torch.manual_seed(0)
    model = DetrForObjectDetection(config).eval()
    with torch.no_grad():  # random values everywhere, frozen batch norms included
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if "running_var" in name:
                tensor.uniform_(0.5, 2.0)
            elif "norm" in name and name.endswith("weight"):
                tensor.uniform_(0.5, 1.5)
            else:
                tensor.normal_(0, 0.3 if tensor.ndim > 1 and "convolution" not in name else 0.1)
    return model


@pytest.mark.parametrize("layer_type", ["basic", "bottleneck"])
def test_outputs_equal_hugging_face(layer_type):
    hf = hf_detr(layer_type)
    ours = detr_from_hf(hf)
    images = torch.randn(2, 3, 100, 84)
    mask = torch.ones(2, 100, 84, dtype=torch.long)
    mask[1, :, 60:] = 0  # the second image is padded
    with torch.no_grad():
        expected = hf(pixel_values=images, pixel_mask=mask)
        out = ours(images, mask.bool())
    assert (out["pred_logits"] - expected.logits).abs().max() < 1e-4
    assert (out["pred_boxes"] - expected.pred_boxes).abs().max() < 1e-4
    assert expected.logits.std() > 0.1  # a real test: the outputs vary


@pytest.mark.slow
def test_timm_backbone_names_map_too():
    from transformers import DetrConfig, DetrForObjectDetection

    config = DetrConfig(backbone="resnet18", use_pretrained_backbone=False, d_model=32, encoder_layers=1,
                        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                        encoder_ffn_dim=40, decoder_ffn_dim=40, num_queries=5, num_labels=3)  # fmt: skip
    hf = DetrForObjectDetection(config).eval()
    ours = detr_from_hf(hf)
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(images)["pred_boxes"] - hf(pixel_values=images).pred_boxes).abs().max() < 1e-4


def test_differences_are_refused_with_reasons():
    with pytest.raises(ConversionError, match="auxiliary_loss"):
        detr_from_hf(hf_detr(aux=True))
    with pytest.raises(ConversionError, match="activation_function"):
        detr_from_hf(hf_detr(activation_function="gelu"))
    with pytest.raises(ConversionError, match="DetrForObjectDetection"):
        detr_from_hf(torch.nn.Linear(2, 2))
