"""Figures for the book: matplotlib where a static picture is better, plotly where
interaction helps (sliders over positions and heads stay live in the static HTML)."""

from .attention import attention_heatmap, plot_attention_overlay
from .augment import plot_augmentations, plot_mixed_batch
from .classification import plot_confusion_matrix, plot_prediction_grid
from .complexity import attention_memory_figure
from .detection import boxes_figure, cost_matrix_figure, threshold_figure
from .diagrams import plot_encoder_block, plot_ffn
from .patches import plot_patch_grid, plot_patch_sequence, to_numpy_image
from .positional import cosine_similarity_matrix, position_similarity_figure, positional_encoding_heatmap
from .timeline import plot_timeline

__all__ = [
    "attention_heatmap",
    "attention_memory_figure",
    "boxes_figure",
    "cost_matrix_figure",
    "cosine_similarity_matrix",
    "plot_attention_overlay",
    "plot_augmentations",
    "plot_confusion_matrix",
    "plot_encoder_block",
    "plot_ffn",
    "plot_mixed_batch",
    "plot_patch_grid",
    "plot_patch_sequence",
    "plot_prediction_grid",
    "plot_timeline",
    "position_similarity_figure",
    "positional_encoding_heatmap",
    "threshold_figure",
    "to_numpy_image",
]
