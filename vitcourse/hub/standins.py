"""Tiny random-weight configurations standing in for the Hub models offline.

Each function returns a Hugging Face config of the *same architecture* as a Hub model,
small enough to build and run in well under a second on a CPU: the code of a chapter
(the classes, the calls, the shapes of the outputs) runs unchanged; the numbers it
prints mean nothing, and :func:`~vitcourse.hub.load_pretrained` says so.

Image classifiers keep the 1000 ImageNet classes and their names (from timm's copy of
the ImageNet metadata) so that code reading ``model.config.id2label`` still works.
Processors (resizing and normalisation) are built to the stand-in's image size.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "STAND_IN_IMAGE_SIZE",
    "grey_to_rgb",
    "imagenet_labels",
    "tiny_clip",
    "tiny_detr",
    "tiny_donut",
    "tiny_grounding_dino",
    "tiny_mobilevit",
    "tiny_sam",
    "tiny_sam2",
    "tiny_swin",
    "tiny_vit",
]

#: Side of the images the classifier stand-ins take (the shipped checkpoints' size too).
STAND_IN_IMAGE_SIZE = 32

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@lru_cache(maxsize=1)
def imagenet_labels() -> dict[int, str] | None:
    """ImageNet-1k class names, index → name (``{285: "Egyptian cat", …}``), or None without timm."""
    try:
        from timm.data import ImageNetInfo
    except ImportError:
        return None
    return dict(enumerate(ImageNetInfo().label_descriptions()))


def grey_to_rgb(model):
    """A copy of a ViT trained on grey images (``in_chans=1``) that takes RGB images.

    Each colour channel gets a third of the grey patch-embedding weights, so the patch
    projection of an RGB image is that of its channel mean. An RGB copy of a grey image
    (what ``PIL``'s ``convert("RGB")`` and the Hugging Face processors make) therefore
    gives exactly the logits the grey model gives, provided each channel is normalised
    with the grey mean and std; a colour photo is seen as its grey version.

    Args:
        model: a :class:`~vitcourse.models.ViT` with ``in_chans=1``.

    Returns:
        A new ViT with ``in_chans=3`` and the same other weights.
    """
    import dataclasses

    from ..models import ViT

    if model.config.in_chans != 1:
        raise ValueError(f"grey_to_rgb expects a ViT with in_chans=1, got in_chans={model.config.in_chans}")
    rgb = ViT(dataclasses.replace(model.config, in_chans=3))
    state = dict(model.state_dict())
    weight = state["patch_embed.proj.weight"]  # (D, 1, P, P)
    state["patch_embed.proj.weight"] = weight.expand(-1, 3, -1, -1) / 3  # (D, 3, P, P)
    rgb.load_state_dict(state)
    return rgb.to(weight.device).train(model.training)


def _classifier_labels() -> dict:
    labels = imagenet_labels()
    if labels is None:
        return {"num_labels": 1000}
    return {"id2label": labels, "label2id": {name: i for i, name in labels.items()}}


# -- classifiers --------------------------------------------------------------------


def tiny_vit():
    """ViT (and DeiT, which the Hub stores as ViT): 32 px, 4 px patches, D=32, 2 blocks, 2 heads."""
    from transformers import ViTConfig

    return ViTConfig(
        image_size=STAND_IN_IMAGE_SIZE, patch_size=4, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, **_classifier_labels(),
    )  # fmt: skip


def tiny_swin():
    """Swin: 32 px, 2 px patches, C=16, two stages of two blocks, 4×4 windows."""
    from transformers import SwinConfig

    return SwinConfig(
        image_size=STAND_IN_IMAGE_SIZE, patch_size=2, embed_dim=16, depths=[2, 2], num_heads=[2, 4],
        window_size=4, **_classifier_labels(),
    )  # fmt: skip


def tiny_mobilevit():
    """MobileViT: 32 px, three narrow MobileViT stages."""
    from transformers import MobileViTConfig

    return MobileViTConfig(
        image_size=STAND_IN_IMAGE_SIZE, hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
        **_classifier_labels(),
    )  # fmt: skip


def vit_processor(size: int, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """Resize to ``size × size`` and normalise (ViT: mean = std = 0.5; Swin, DeiT: ImageNet's)."""
    from transformers import ViTImageProcessor

    return ViTImageProcessor(size={"height": size, "width": size}, image_mean=list(mean), image_std=list(std))


def mobilevit_processor(size: int):
    """MobileViT's: resize the short side, centre crop, no normalisation, BGR order."""
    from transformers import MobileViTImageProcessor

    return MobileViTImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


# -- multimodal, detection, segmentation, OCR ---------------------------------------------


def tiny_clip():
    """CLIP: a 2-block ViT (32 px, 8 px patches) and a 2-block text encoder, 16-d joint space."""
    from transformers import CLIPConfig

    text = dict(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77,
    )  # the real vocabulary size, so that the real tokenizer's ids fit
    vision = dict(
        image_size=STAND_IN_IMAGE_SIZE, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)


def tiny_detr():
    """DETR: a 4-stage toy ResNet (transformers', not timm's), one encoder and one decoder layer, 10 queries."""
    from transformers import DetrConfig, ResNetConfig

    backbone = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], out_features=["stage4"]
    )
    return DetrConfig(
        use_timm_backbone=False, use_pretrained_backbone=False, backbone_config=backbone, d_model=32,
        encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=10,
    )  # fmt: skip


def detr_processor(size: int):
    """DETR's: resize (short side ``size``), normalise with ImageNet statistics, pad."""
    from transformers import DetrImageProcessor

    return DetrImageProcessor(size={"shortest_edge": size, "longest_edge": 2 * size})


def tiny_grounding_dino():
    """Grounding DINO: a toy Swin backbone, a 1-layer BERT text encoder, 2 decoder layers, 10 queries."""
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    backbone = SwinConfig(
        image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=2,
        out_indices=[2, 3, 4],
    )
    text = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64,
    )  # BERT's vocabulary size, so that the real tokenizer's ids fit
    return GroundingDinoConfig(
        backbone_config=backbone, use_timm_backbone=False, use_pretrained_backbone=False, text_config=text,
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, num_queries=10, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32, text_enhancer_dim=64,
    )  # fmt: skip


def tiny_sam():
    """SAM: a 2-block ViT image encoder (64 px, 8 px patches), the prompt encoder and a 2-layer mask decoder."""
    from transformers import SamConfig

    return SamConfig(
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=64,
            patch_size=8, output_channels=16, window_size=2, global_attn_indexes=[1], mlp_dim=64,
        ),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32,
                                 iou_head_hidden_dim=16),
    )  # fmt: skip


def sam_processor(size: int = 64):
    """SAM's processor at the stand-in's 64 px: resize the long side, normalise, pad to a square."""
    from transformers import SamImageProcessor, SamProcessor

    return SamProcessor(SamImageProcessor(size={"longest_edge": size}, pad_size={"height": size, "width": size}))


def tiny_sam2():
    """SAM 2: a 4-stage Hiera image encoder (64 px) with windowed and global attention, FPN, prompt encoder, decoder."""
    from transformers import Sam2Config

    hiera = dict(
        model_type="sam2_hiera_det_model", hidden_size=16, num_attention_heads=1, image_size=[64, 64],
        window_positional_embedding_background_size=[2, 2], blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[3],
    )  # global attention only where a stage doesn't start (query pooling needs a window)
    return Sam2Config(
        vision_config=dict(backbone_config=hiera, backbone_channel_list=[128, 64, 32, 16],
                           backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=32),
        prompt_encoder_config=dict(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
    )  # fmt: skip


def tiny_donut():
    """Donut: a 2-stage Donut-Swin encoder (32 px) and a 1-layer mBART decoder."""
    from transformers import DonutSwinConfig, MBartConfig, VisionEncoderDecoderConfig

    encoder = DonutSwinConfig(
        image_size=[STAND_IN_IMAGE_SIZE, STAND_IN_IMAGE_SIZE], patch_size=2, embed_dim=16, depths=[1, 1],
        num_heads=[2, 4], window_size=4,
    )
    decoder = MBartConfig(
        vocab_size=57525, d_model=32, decoder_layers=1, encoder_layers=1, decoder_attention_heads=2,
        encoder_attention_heads=2, decoder_ffn_dim=64, encoder_ffn_dim=64, max_position_embeddings=64,
        is_decoder=True, add_cross_attention=True,
    )  # Donut's vocabulary size, so that the real tokenizer's ids fit
    return VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
