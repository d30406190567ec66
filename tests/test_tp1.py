"""TP1's package side: the PCA bound on what a linear patch embedding keeps, and the shipped point notebook."""

import math

import pytest
import torch
import torch.nn.functional as F

from vitcourse.complexity import attention_memory_bytes, msa_flops
from vitcourse.exercises import point_notebook
from vitcourse.exercises.tp1 import image_patches, patch_pca, pca_reconstruction, variance_kept
from vitcourse.layers import PatchEmbedding, patchify
from vitcourse.sweep import notebook_parameters, run_sweep


def test_image_patches_are_cut_like_patch_embedding_with_padding():
    image = torch.rand(3, 30, 45)
    patches, grid_size, padding = image_patches(image, 8)
    embedding = PatchEmbedding((30, 45), 8, in_chans=3, embed_dim=5, method="linear", pad=True)
    assert grid_size == embedding.grid_size == (4, 6)
    assert padding == embedding.padding == (2, 3)
    assert patches.shape == (24, 8 * 8 * 3)
    torch.testing.assert_close(patches, patchify(F.pad(image, (0, 3, 0, 2))[None], 8)[0])
    # The linear embedding is exactly a linear map of these patches.
    torch.testing.assert_close(embedding(image[None])[0], embedding.proj(patches))


def test_variance_kept_grows_with_the_dimension_and_reaches_one_at_the_rank():
    torch.manual_seed(0)
    image = torch.rand(3, 40, 40)
    pca = patch_pca(image, 8)  # 25 patches of 192 numbers: rank at most 24
    assert pca.max_rank == 24
    kept = [pca.variance_kept(d) for d in (1, 2, 4, 8, 16, 24, 64)]
    assert all(0 < a <= b for a, b in zip(kept, kept[1:]))
    assert kept[0] < 0.5 and math.isclose(kept[-2], 1.0) and math.isclose(kept[-1], 1.0)
    assert variance_kept(image, 8, 4) == pytest.approx(kept[2])
    with pytest.raises(ValueError, match="embed_dim must be positive"):
        pca.variance_kept(0)


def test_variance_kept_bounds_any_linear_embedding():
    """Eckart–Young: no D-dim linear map (with the best linear decoder) keeps more than the PCA."""
    torch.manual_seed(0)
    image = F.interpolate(torch.rand(1, 3, 12, 12), size=64, mode="bilinear")[0]  # smooth: a few directions matter
    patches, _, _ = image_patches(image, 8)
    centred = (patches - patches.mean(0)).double()  # (N, P*P*C)
    total = centred.pow(2).sum()
    dim = 6
    bound = variance_kept(image, 8, dim)
    for _ in range(5):
        codes = centred @ torch.randn(centred.shape[1], dim, dtype=torch.float64)  # (N, D)
        decoder = torch.linalg.lstsq(codes, centred).solution  # best linear decoder for these codes
        kept = 1 - (centred - codes @ decoder).pow(2).sum() / total
        assert kept <= bound + 1e-9
    # The PCA's own projection reaches the bound.
    pca = patch_pca(image, 8)
    codes = centred @ pca.components[:dim].T
    kept = 1 - (centred - codes @ pca.components[:dim]).pow(2).sum() / total
    assert kept.item() == pytest.approx(bound)


def test_pca_reconstruction_is_exact_at_full_rank_and_crops_the_padding():
    torch.manual_seed(0)
    image = torch.rand(3, 30, 45)
    pca = patch_pca(image, 8)
    full = pca_reconstruction(pca, 10_000)
    assert full.shape == image.shape
    torch.testing.assert_close(full, image, atol=1e-5, rtol=0)
    coarse = pca_reconstruction(pca, 2)
    assert (coarse - image).pow(2).mean() > (full - image).pow(2).mean()


def test_point_notebook_ships_with_the_package_and_has_the_sweep_parameters():
    path = point_notebook("tp1_point")
    assert path.suffix == ".ipynb" and path.parent.name == "exercises"
    parameters = notebook_parameters(path)
    expected = {"PROFILE", "SEED", "IMG_SIZE", "PHOTO", "PATCH_SIZE", "EMBED_DIM", "DEPTH", "RESULT_PATH"}
    assert expected <= set(parameters)
    assert parameters["IMG_SIZE"] == 900 and parameters["PATCH_SIZE"] == 64 and parameters["EMBED_DIM"] == 8
    with pytest.raises(FileNotFoundError, match="ships"):
        point_notebook("tp9_point")


@pytest.mark.slow
@pytest.mark.notebook
def test_point_notebook_measures_what_the_formulas_say(tmp_path):
    # 100 px with patches of 16: a 7x7 grid, 12 rows and columns of padding.
    table = run_sweep(
        point_notebook("tp1_point"),
        {"PATCH_SIZE": [16], "EMBED_DIM": [8, 128]},
        tmp_path / "sweep",
        parameters={"PROFILE": "smoke", "IMG_SIZE": 100, "DEPTH": 1},
        workers=2,
    )
    assert table["status"].tolist() == ["ok", "ok"], table["error"].tolist()
    small, large = table.iloc[0], table.iloc[1]
    assert (small.grid_h, small.grid_w, small.num_patches, small.pad_h, small.seq_len) == (7, 7, 49, 12, 50)
    assert small.patch_dim == 16 * 16 * 3 and small.compression == pytest.approx(768 / 8)
    assert (small.num_heads, large.num_heads) == (1, 2)
    assert small.params_patch_embed == 768 * 8 + 8
    assert small.params_pos_embed == 50 * 8 + 8  # a position per token ([CLS] included) and the [CLS] token
    assert large.attn_memory_per_layer == attention_memory_bytes(50, heads=2) == 50 * 50 * 2 * 4
    assert large.msa_flops_per_layer == msa_flops(7, 7, 128)
    assert 0 < small.variance_kept < large.variance_kept <= 1
    assert small.variance_kept == pytest.approx(variance_kept(_photo(100), 16, 8))
    assert small.params_total == small.params_patch_embed + small.params_pos_embed + small.params_encoder
    assert (table["forward_ms"] > 0).all() and (table["torch_threads"] == 1).all()


def _photo(size):
    from vitcourse.data import load_photo

    return load_photo("astronaut", size)


def test_learned_pos_follows_the_course_torch_randn():
    from torch import nn

    from vitcourse.grading import evaluate
    from vitcourse.grading.tp1 import CourseLearnedPositionalEmbedding

    class ScaledLikeViT(nn.Module):  # ViT's 0.02, not the course's torch.randn
        def __init__(self, num_positions, embed_dim):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(1, num_positions, embed_dim) * 0.02)

        def forward(self, x):
            return x + self.weight[:, : x.shape[1]]

    assert evaluate("tp1.learned_pos", CourseLearnedPositionalEmbedding).score == 4
    scaled = evaluate("tp1.learned_pos", ScaledLikeViT)
    by_name = {t.test_id.split("/")[1]: t for t in scaled.tests}
    assert by_name["initial_values"].status == "fail" and "torch.randn" in by_name["initial_values"].hint
    assert 0 < scaled.score < 4
