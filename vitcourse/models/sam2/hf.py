"""Hugging Face's ``Sam2VideoModel`` next to ours: a tiny config that runs offline, and the same parts.

``transformers`` ships SAM 2 for video as ``Sam2VideoModel`` (a Hiera image encoder with
an FPN, SAM's prompt encoder and mask decoder, a memory attention, a memory encoder,
object pointers) driven by an *inference session* that holds the memory bank. The
released checkpoints (``facebook/sam2.1-hiera-tiny`` and larger) need the Hub; a tiny
config with random weights needs nothing and shows the structure and the streaming
interface.
"""

from __future__ import annotations

import torch

__all__ = ["HF_CHECKPOINT", "HF_MODULES", "hf_track", "tiny_hf_config", "tiny_hf_processor"]

#: The smallest released SAM 2.1; ``full`` profile only (the Hub). Its revision is the commit pinned
#: with the other Hub models, ``vitcourse.hub.HUB_MODELS[HF_CHECKPOINT].revision`` (looked up there
#: when the weights are loaded, so that importing this module doesn't import the hub).
HF_CHECKPOINT = "facebook/sam2.1-hiera-tiny"

#: Our module (attribute of :class:`~vitcourse.models.sam2.Sam2`) → Hugging Face's
#: (attribute of ``Sam2VideoModel``), for the same role.
HF_MODULES = {
    "sam.image_encoder": "vision_encoder",
    "sam.prompt_encoder": "prompt_encoder",
    "sam.mask_decoder": "mask_decoder",
    "memory_attention": "memory_attention",
    "memory_encoder": "memory_encoder",
    "memory_encoder.mask_downsampler": "memory_encoder.mask_downsampler",
    "memory_encoder.fuser": "memory_encoder.memory_fuser",
    "pointer_proj": "object_pointer_proj",
    "time_embed": "memory_temporal_positional_encoding",
    "no_memory": "no_memory_embedding",
}


def tiny_hf_config(hidden_size: int = 128, memory_dim: int = 64, img_size: int = 64):
    """A ``Sam2VideoConfig`` small enough for a CPU test (random weights, 64-pixel frames).

    Args:
        hidden_size: channels of the image embedding, prompts and memory attention; a
            multiple of ``memory_dim`` above it (object pointers are split into
            ``hidden_size / memory_dim`` memory tokens).
        memory_dim: channels of a memory (64 as in the released models).
        img_size: frame side (a multiple of 16).

    Returns:
        A ``transformers.Sam2VideoConfig``.
    """
    from transformers import Sam2VideoConfig

    if hidden_size % memory_dim or hidden_size <= memory_dim:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be a multiple of memory_dim ({memory_dim}) above it: "
            f"SAM 2 splits each object pointer into hidden_size / memory_dim memory tokens"
        )
    grid = img_size // 16
    hiera = {
        "model_type": "sam2_hiera_det_model", "hidden_size": 16, "num_attention_heads": 1,
        "image_size": [img_size] * 2, "window_positional_embedding_background_size": [2, 2],
        "blocks_per_stage": [1, 1, 2, 1], "embed_dim_per_stage": [16, 32, 64, 128],
        "num_attention_heads_per_stage": [1, 1, 2, 2], "window_size_per_stage": [4, 4, 4, 2],
        "global_attention_blocks": [3],
    }  # fmt: skip
    sizes = [[4 * grid] * 2, [2 * grid] * 2, [grid] * 2]
    return Sam2VideoConfig(
        vision_config={"model_type": "sam2_vision_model", "backbone_config": hiera,
                       "backbone_channel_list": [128, 64, 32, 16], "backbone_feature_sizes": sizes,
                       "fpn_hidden_size": hidden_size},
        prompt_encoder_config={"hidden_size": hidden_size, "image_size": img_size, "patch_size": 16,
                               "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": hidden_size, "mlp_dim": 64, "num_attention_heads": 2,
                             "iou_head_hidden_dim": 32},
        image_size=img_size, memory_attention_hidden_size=hidden_size, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=hidden_size, memory_encoder_output_channels=memory_dim,
        mask_downsampler_embed_dim=hidden_size, memory_fuser_embed_dim=hidden_size,
        memory_fuser_intermediate_dim=64,
    )  # fmt: skip


def tiny_hf_processor(img_size: int = 64):
    """A ``Sam2VideoProcessor`` resizing frames to ``img_size`` (built offline, no Hub)."""
    from transformers import Sam2VideoProcessor
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    size = {"height": img_size, "width": img_size}
    return Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=size), video_processor=Sam2VideoVideoProcessor(size=size))


@torch.no_grad()
def hf_track(
    model, processor, frames: torch.Tensor, point: tuple[float, float]
) -> tuple[torch.Tensor, dict]:
    """Track one object clicked on frame 0 through a clip with a ``Sam2VideoModel``.

    Args:
        model: a ``transformers.Sam2VideoModel``.
        processor: its ``Sam2VideoProcessor``.
        frames: ``(T, 3, H, W)`` floats in ``[0, 1]``.
        point: the click ``(x, y)`` in pixels of frame 0.

    Returns:
        ``(masks, bank)``: low-resolution mask logits ``(T, h, w)`` and, for the last
        frame, which frames the session kept as prompted (``cond``) and tracked
        (``non_cond``) memories.
    """
    video = (frames.permute(0, 2, 3, 1) * 255).round().to(torch.uint8)  # (T, H, W, 3)
    session = processor.init_video_session(
        video=video, inference_device="cpu", dtype=torch.float32
    )
    processor.add_inputs_to_inference_session(
        session,
        frame_idx=0,
        obj_ids=1,
        input_points=[[[list(point)]]],
        input_labels=[[[1]]],
    )
    # the prompted frame
    masks = {0: model(inference_session=session, frame_idx=0).pred_masks[0, 0]}
    for out in model.propagate_in_video_iterator(session):
        masks[out.frame_idx] = out.pred_masks[0, 0]  # (h, w)
    outputs = session.output_dict_per_obj[0]
    bank = {
        "cond": sorted(outputs["cond_frame_outputs"]),
        "non_cond": sorted(outputs["non_cond_frame_outputs"]),
    }
    return torch.stack([masks[t] for t in sorted(masks)]), bank
