"""TP2: the package side (parameter formula, MACs, batch influence, the original TP's ViT) and its checks.

The checks are tested on the TP's own solution, taken from ``exercises/tp2/tp2.md``, and
on known bugs injected into it by replacing one line: each must fail the test that is
about that bug, with the message that names it.
"""

import matplotlib
import nbformat
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vitcourse.exercises.tp2 import (
    TorchEncoderViT,
    batch_influence,
    vit_forward_macs,
    vit_num_params,
    vit_param_breakdown,
)
from vitcourse.grading import evaluate, get_assignment
from vitcourse.grading.build import read_source, student_notebook
from vitcourse.grading.probes import raised
from vitcourse.grading.submission import extract_definitions, reference_used
from vitcourse.grading.tp2 import ReferenceViT
from vitcourse.models import count_parameters, create_model, get_config, list_models

from solved_tp import SolvedTP, by_test

matplotlib.use("Agg")

# The report cell needs the notebook's training runs; its checks are tested on reports built here.
SOLVED = SolvedTP(
    "tp2",
    prelude="import math\nimport torch\nfrom torch import nn\n",
    keep=lambda source: "report = " not in source,
)
TP2, SOLUTION = SOLVED.tp, SOLVED.code
PARTS = {
    "tp2.patch_embed": "PatchEmbedding",
    "tp2.attention": "MultiHeadSelfAttention",
    "tp2.block": "EncoderBlock",
    "tp2.vit": "ViT",
    "tp2.param_count": "vit_num_params",
    "tp2.batch_influence": "batch_influence",
}


_namespace, _with_bug, _by_test = SOLVED.namespace, SOLVED.with_bug, by_test


# --------------------------------------------------------------------------- the package side


@pytest.mark.parametrize(
    "sizes",
    [
        (30, 5, 1, 7, 36, 2, 3, 2.5),
        (32, 4, 3, 10, 192, 6, 3, 2.0),
        (30, 3, 3, 7, 36, 1, 3, 4.0),
        (16, 4, 1, 10, 64, 4, 4, 2.0),
    ],
)
def test_the_formula_counts_the_reference_vit(sizes):
    img, patch, chans, classes, dim, depth, heads, ratio = sizes
    model = ReferenceViT(img, patch, chans, classes, dim, depth, heads, ratio)
    assert vit_num_params(img, patch, chans, classes, dim, depth, ratio) == count_parameters(model)
    parts = vit_param_breakdown(img, patch, chans, classes, dim, depth, ratio)
    assert parts["cls_token"] == dim and parts["pos_embed"] == ((img // patch) ** 2 + 1) * dim
    assert parts["head"] == count_parameters(model.head) and parts["blocks"] == count_parameters(model.blocks)


def test_the_formula_gives_the_papers_sizes():
    assert vit_num_params(224, 16, 3, 1000, 768, 12, 4.0) == 86_567_656  # ViT-B/16
    for name in ("vit_micro_patch4_32", "vit_nano_patch4_16", "vit_pico_patch2_8"):
        c = get_config(name)
        count = vit_num_params(c.img_size, c.patch_size, c.in_chans, c.num_classes, c.embed_dim, c.depth, c.mlp_ratio)
        assert count == count_parameters(create_model(name)), name
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        vit_num_params(30, 4)


@pytest.mark.parametrize("sizes", [(32, 4, 3, 10, 192, 2, 3, 2.0), (30, 5, 1, 7, 36, 2, 3, 2.5)])
def test_forward_macs_match_pytorchs_flop_counter(sizes):
    img, patch, chans, classes, dim, depth, heads, ratio = sizes
    model = ReferenceViT(img, patch, chans, classes, dim, depth, heads, ratio).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, chans, img, img), return_attention=True)  # the manual path: matmuls the counter sees
    assert counter.get_total_flops() == 2 * vit_forward_macs(img, patch, chans, classes, dim, depth, ratio)


def test_batch_influence_tells_mixing_from_independent_models():
    x = torch.randn(4, 5, 12)
    before = x.clone()
    mixing = nn.TransformerEncoderLayer(12, 3, dim_feedforward=24, batch_first=False)  # dropout 0.1, train mode
    independent = nn.TransformerEncoderLayer(12, 3, dim_feedforward=24, batch_first=True)
    assert batch_influence(mixing, x).all()
    assert torch.equal(batch_influence(independent, x), torch.eye(4, dtype=torch.bool))
    assert mixing.training and independent.training  # modes restored
    assert torch.equal(x, before)
    assert torch.equal(batch_influence(nn.Linear(6, 2), torch.randn(3, 6)), torch.eye(3, dtype=torch.bool))


def test_the_original_tps_vit_mixes_the_batch_or_never_sees_the_image():
    images = torch.randn(4, 3, 16, 16)
    sizes = dict(img_size=16, patch_size=4, num_classes=5, embed_dim=32, depth=2, num_heads=2)
    torch.manual_seed(0)
    fixed = TorchEncoderViT(**sizes, batch_first=True)
    assert torch.equal(batch_influence(fixed, images), torch.eye(4, dtype=torch.bool))
    assert vit_num_params(16, 4, 3, 5, 32, 2, 4.0) == count_parameters(fixed)  # same parameters as our ViT
    mean = TorchEncoderViT(**sizes, batch_first=False, pool="mean")
    assert batch_influence(mean, images).all()
    cls = TorchEncoderViT(**sizes, batch_first=False, pool="cls").eval()
    logits = cls(images)
    assert torch.allclose(logits, logits[:1].expand_as(logits))  # the [CLS] only sees copies of itself
    with pytest.raises(ValueError, match="pool"):
        TorchEncoderViT(**sizes, pool="max")


def test_raised_names_the_exception_and_lets_not_implemented_through():
    assert raised(lambda: int("x")) == "ValueError"
    assert raised(lambda: 1) == "sin error"
    with pytest.raises(NotImplementedError):
        raised(lambda: (_ for _ in ()).throw(NotImplementedError("todavía no")))


# --------------------------------------------------------------------------- the checks


@pytest.fixture(scope="module")
def solution():
    return _namespace(SOLUTION)


@pytest.mark.parametrize("key", PARTS)
def test_the_tps_solution_passes_every_check(solution, key):
    result = evaluate(key, solution[PARTS[key]])
    assert result.score == result.points, result.to_text()


@pytest.mark.parametrize("key", PARTS)
def test_the_student_stubs_are_pending_everywhere(key):
    student = student_notebook(read_source(TP2), TP2)
    code = "\n\n".join(cell.source for cell in student.cells if "solution" in cell.metadata.get("tags", []))
    namespace = _namespace(code)
    result = evaluate(key, namespace[PARTS[key]])
    assert {t.status for t in result.tests} == {"pending"} and result.score == 0


def test_every_part_checks_something_and_the_points_add_up():
    tp = get_assignment("tp2")
    assert tp.total_points == 10 and sum(p.points for p in tp.auto_parts) == 8
    assert all(len(part.tests) >= 2 for part in tp.auto_parts)


@pytest.mark.parametrize(
    "old, new, bug",
    [
        ("/ math.sqrt(self.head_dim)", "/ math.sqrt(D)", "dividir por √D en vez de √(D/h)"),
        ("/ math.sqrt(self.head_dim)", "", "no dividir los scores por √(D/h)"),
        ("(weights @ v).transpose(1, 2).reshape(B, N, D)", "(weights @ v).reshape(B, N, D)", "reshape sin transponer"),
        (".softmax(dim=-1)", ".softmax(dim=-2)", "la softmax sobre las consultas"),
        ("out = self.proj(out)", "out = out", "no aplicar la proyección de salida"),
    ],
)
def test_attention_bugs_are_named(old, new, bug):
    result = evaluate("tp2.attention", _with_bug(old, new)["MultiHeadSelfAttention"])
    values = _by_test(result)["attention_values"]
    assert values.status == "fail" and bug in values.got, values.lines()
    assert result.score < result.points


def test_attention_that_mixes_the_batch_fails_independence():
    # Splitting heads with a view that ignores the batch axis: (B, N, D) read as (N, B, ...).
    namespace = _with_bug(
        "t.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)",
        "t.transpose(0, 1).reshape(N, B, self.num_heads, self.head_dim).permute(2, 1, 0, 3)",
    )
    tests = _by_test(evaluate("tp2.attention", namespace["MultiHeadSelfAttention"]))
    assert tests["attention_batch_independence"].status == "fail"
    assert "cambiar la muestra" in tests["attention_batch_independence"].got


def test_a_post_norm_block_is_not_the_identity_at_zero():
    namespace = _with_bug(
        "        x = x + self.attn(self.norm1(x))\n        return x + self.mlp(self.norm2(x))",
        "        x = self.norm1(x + self.attn(x))\n        return self.norm2(x + self.mlp(x))",
    )
    tests = _by_test(evaluate("tp2.block", namespace["EncoderBlock"]))
    assert tests["block_identity_at_zero"].status == "fail" and tests["block_values"].status == "fail"
    assert tests["block_batch_independence"].status == "pass"


def test_a_block_without_residuals_fails():
    namespace = _with_bug("return x + self.mlp(self.norm2(x))", "return self.mlp(self.norm2(x))")
    tests = _by_test(evaluate("tp2.block", namespace["EncoderBlock"]))
    assert tests["block_identity_at_zero"].status == "fail"


def test_a_vit_without_cls_token_is_named():
    code = SOLUTION
    for old, new in [
        ("x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, 1 + N, D)", "x = x + self.pos_embed"),
        ("torch.zeros(1, 1 + self.patch_embed.num_patches", "torch.zeros(1, self.patch_embed.num_patches"),
        ("        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))\n", ""),
        ("        cls = self.cls_token.expand(len(x), -1, -1)  # (B, 1, D)\n", ""),
    ]:
        assert old in code, f"the solution no longer has {old!r}: update this test"
        code = code.replace(old, new)
    namespace = _namespace(code)
    tests = _by_test(evaluate("tp2.vit", namespace["ViT"]))
    assert tests["vit_parameters"].status == "fail" and "el token [CLS] y su posición" in tests["vit_parameters"].got
    assert tests["vit_shapes"].status == "fail" and "forward_features" in tests["vit_shapes"].expected


def test_a_vit_without_positions_fails_the_position_and_gradient_tests():
    namespace = _with_bug("x = torch.cat([cls, x], dim=1) + self.pos_embed", "x = torch.cat([cls, x], dim=1)")
    tests = _by_test(evaluate("tp2.vit", namespace["ViT"]))
    assert tests["vit_sees_positions"].status == "fail" and "reordenar los parches" in tests["vit_sees_positions"].got
    assert tests["vit_gradients"].status == "fail" and "[1, 37, 36]" in tests["vit_gradients"].got


class _BatchFirstBugViT(nn.Module):
    """The original TP's mistake inside a student-style ViT: PyTorch's layers fed (B, N, D) without batch_first."""

    def __init__(self, img_size, patch_size, in_chans=3, num_classes=10, embed_dim=192, depth=6, num_heads=3,
                 mlp_ratio=4.0):  # fmt: skip
        super().__init__()
        self.inner = TorchEncoderViT(img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads,
                                     mlp_ratio, batch_first=False, pool="mean")  # fmt: skip

    def forward_features(self, images):
        return self.inner.forward_features(images)

    def forward(self, images):
        return self.inner(images)


def test_the_batch_first_bug_fails_with_its_message():
    tests = _by_test(evaluate("tp2.vit", _BatchFirstBugViT))
    independence = tests["vit_batch_independence"]
    assert independence.status == "fail"
    assert "cambiar la muestra 1 cambió la salida de la muestra 0" in independence.got
    assert "batch_first=True" in independence.hint


def test_patch_embedding_bugs():
    column_major = _with_bug(
        "return x.flatten(2).transpose(1, 2)", "return x.transpose(2, 3).flatten(2).transpose(1, 2)"
    )
    tests = _by_test(evaluate("tp2.patch_embed", column_major["PatchEmbedding"]))
    assert tests["one_token_per_patch"].status == "fail" and tests["shapes"].status == "pass"
    unchecked = _with_bug("if images.ndim != 4 or tuple(images.shape[1:]) != expected:", "if False:")
    tests = _by_test(evaluate("tp2.patch_embed", unchecked["PatchEmbedding"]))
    assert tests["errors"].status == "fail" and "sin error" in tests["errors"].got


def test_batch_influence_bugs():
    no_eval = _with_bug("    model.eval()\n", "")
    tests = _by_test(evaluate("tp2.batch_influence", no_eval["batch_influence"]))
    assert tests["independent_layer"].status == "fail" and tests["mixing_layer"].status == "pass"
    transposed = _with_bug("influence[:, j] =", "influence[j, :] =")
    tests = _by_test(evaluate("tp2.batch_influence", transposed["batch_influence"]))
    assert tests["orientation"].status == "fail" and tests["independent_layer"].status == "pass"


def test_a_parameter_formula_without_the_cls_token_fails():
    namespace = _with_bug("return patch_embed + cls_token + pos_embed", "return patch_embed + pos_embed")
    assert evaluate("tp2.param_count", namespace["vit_num_params"]).score == 0


# --------------------------------------------------------------------------- leaning on ready-made code


def _chunks(*cells: str):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    return extract_definitions(notebook)


def test_ready_made_layers_inside_a_part_are_named():
    from vitcourse.grading import get_part

    imports = "import torch\nfrom torch import nn\nimport vitcourse.models"
    attention = get_part("tp2.attention")
    uses_torch = (
        "class MultiHeadSelfAttention(nn.Module):\n"
        "    def __init__(self, d, h):\n"
        "        self.a = nn.MultiheadAttention(d, h)"
    )
    assert reference_used(_chunks(imports, uses_torch), "MultiHeadSelfAttention", attention.originals) == (
        "torch.nn.modules.activation.MultiheadAttention"
    )
    vit = get_part("tp2.vit")
    subclass = "class ViT(vitcourse.models.ViT):\n    pass"
    assert reference_used(_chunks(imports, subclass), "ViT", vit.originals) == "vitcourse.models.vit.ViT"
    own = (
        "class EncoderBlock(nn.Module):\n    pass\n\n"
        "class ViT(nn.Module):\n    def f(self):\n        return EncoderBlock()"
    )
    assert reference_used(_chunks(imports, own), "ViT", vit.originals) == ""


def test_every_registered_vit_preset_is_countable():
    for name in list_models("vit_*"):
        c = get_config(name)
        sizes = (c.img_size, c.patch_size, c.in_chans, c.num_classes, c.embed_dim, c.depth, c.mlp_ratio)
        assert vit_num_params(*sizes) > 0


# --------------------------------------------------------------------------- figures


def test_result_figures():
    from vitcourse.viz import plot_confusion_matrix, plot_prediction_grid

    confusion = torch.tensor([[5, 1, 0], [0, 4, 2], [1, 0, 6]])
    ax = plot_confusion_matrix(confusion, ["a", "b", "c"])
    assert ax.get_xlabel() == "predicción" and len(ax.texts) == 6  # one label per non-zero cell
    with pytest.raises(ValueError, match="3 class names"):
        plot_confusion_matrix(torch.zeros(2, 2), ["a", "b", "c"])
    images = torch.rand(5, 3, 8, 8)
    targets, preds = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([0, 2, 2, 0, 0])
    fig = plot_prediction_grid(images, targets, preds, ["a", "b", "c"], ncols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 5 and sum(title.startswith("✓") for title in titles) == 3
    assert "(es b)" in titles[1]
    with pytest.raises(ValueError, match="same length"):
        plot_prediction_grid(images, torch.tensor([0]), torch.tensor([0]), ["a"])


# --------------------------------------------------------------------------- names and creation order don't matter


def test_an_attention_that_creates_proj_before_qkv_scores_full_marks():
    lines = "        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)\n        self.proj = nn.Linear(embed_dim, embed_dim)\n"
    assert lines in SOLUTION
    swapped = _namespace(
        SOLUTION.replace(
            lines,
            "        self.out = nn.Linear(embed_dim, embed_dim)\n        self.to_qkv = nn.Linear(embed_dim, 3 * embed_dim)\n",
        )
        .replace("self.qkv(x)", "self.to_qkv(x)")
        .replace("self.proj(out)", "self.out(out)")
    )
    result = evaluate("tp2.attention", swapped["MultiHeadSelfAttention"])
    assert result.score == result.points, result.to_text()


def test_a_block_that_creates_its_parts_in_another_order_scores_full_marks():
    start = SOLUTION.index("        self.norm1 = nn.LayerNorm")
    end = SOLUTION.index("        # END SOLUTION", start)
    created = SOLUTION[start:end].rstrip("\n").split("\n")
    statements, current = [], []
    for line in created:  # one statement may span lines
        if line.startswith("        self.") and current:
            statements.append("\n".join(current))
            current = []
        current.append(line)
    statements.append("\n".join(current))
    assert len(statements) == 4, statements
    reordered = SOLUTION[:start] + "\n".join(reversed(statements)) + "\n" + SOLUTION[end:]
    result = evaluate("tp2.block", _namespace(reordered)["EncoderBlock"])
    assert result.score == result.points, result.to_text()


# --------------------------------------------------------------------------- the trained model's report


def _report(predictions, **override):
    from vitcourse.data import FashionMNIST
    from vitcourse.train.metrics import classification_metrics

    labels = FashionMNIST("test", normalize=False).labels
    metrics = classification_metrics(predictions, labels, 10)
    report = {"dataset": "fashion_mnist", "predictions": predictions, "parameters": 1234, **metrics}
    return {**report, **override}


def _wrong(fraction: float) -> torch.Tensor:
    from vitcourse.data import FashionMNIST

    predictions = FashionMNIST("test", normalize=False).labels.clone()
    count = int(fraction * len(predictions))
    predictions[:count] = (predictions[:count] + 1) % 10
    return predictions


def test_a_report_over_the_threshold_with_its_own_metrics_scores_full_marks():
    result = evaluate("tp2.report", _report(_wrong(0.2)))  # 80 % right
    assert result.score == result.points, result.to_text()


def test_a_report_under_the_threshold_fails_only_the_accuracy_test():
    result = evaluate("tp2.report", _report(_wrong(0.5)))
    tests = _by_test(result)
    assert tests["report_accuracy"].status == "fail" and "70\u202f%" in tests["report_accuracy"].expected
    assert "50.0\u202f%" in tests["report_accuracy"].got
    assert {tests[name].status for name in ("report_predictions", "report_metrics", "report_confusion")} == {"pass"}


def test_metrics_that_do_not_follow_from_the_predictions_fail():
    predictions = _wrong(0.2)
    good = _report(predictions)
    bad = _report(predictions, accuracy=0.99, confusion=good["confusion"].T)
    tests = _by_test(evaluate("tp2.report", bad))
    assert tests["report_metrics"].status == "fail" and "accuracy: reportó 0.9900" in tests["report_metrics"].got
    assert tests["report_confusion"].status == "fail"


def test_a_report_without_predictions_says_what_is_missing():
    report = _report(_wrong(0.2))
    del report["predictions"]
    result = evaluate("tp2.report", report)
    assert result.score == 0 and "predictions" in result.to_text()
