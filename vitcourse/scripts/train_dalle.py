"""Train DALL-E's two stages on the generated world, the colour classifier that judges it
and the mini-CLIP that reranks its drawings.

    python -m vitcourse.scripts.train_dalle dvae         # stage 1a: the dVAE -> dvae_world
    python -m vitcourse.scripts.train_dalle decoder --init-from dvae_world --max-minutes 30
                                                         # stage 1b: its decoder on hard tokens
    python -m vitcourse.scripts.train_dalle colors       # the judge of colour -> resnet_colors
    python -m vitcourse.scripts.train_dalle transformer  # stage 2: the GPT   -> dalle_world
    python -m vitcourse.scripts.train_dalle reranker     # the reranker       -> clip_dalle_world
    python -m vitcourse.scripts.train_dalle evaluate     # generations judged -> results/dalle_world.json

    # the shipped stage 2: from scratch on a GPU, 100 000 training images, caption
    # dropout for classifier-free guidance; the cosine ends with the 4.2-minute budget
    # (14.2 epochs on one H200; on a CPU, --epochs 14 without --max-minutes takes hours;
    # in a copy without .git, the card's commit is VITCOURSE_COMMIT when set)
    python -m vitcourse.scripts.train_dalle transformer --device cuda --threads 2 --epochs 400 \
        --caption-dropout 0.15 --seed 0 --preset dalle_tiny --train-size 100000 --lr 2e-3 --max-minutes 4.2

    # continue the shipped stage 2 for at most 35 minutes (the cosine ends with the budget)
    python -m vitcourse.scripts.train_dalle transformer --init-from dalle_world --epochs 30 --max-minutes 35

Stage 1 trains the dVAE (:mod:`vitcourse.models.dvae`) on the world's images with the
Gumbel-softmax relaxation: the temperature falls from 1 to 1/16 and the KL weight β
rises from 0 to 1 (the paper's schedules, shortened). Stage 2 freezes it, turns every
training image into its 64 most probable tokens and trains the transformer on
caption + image tokens, the caption's tokens weighted 1/8 and the image's 7/8 as in
the paper. Images showing a held-out colour–shape pair
(:data:`~vitcourse.models.dalle.HELD_OUT`) are in neither stage's training set.

``reranker`` trains chapter 5's mini-CLIP, with chapter 5's contrastive loop
(:func:`vitcourse.scripts.train_clip.train`), on exactly stage 2's training pairs: the
same images and captions, no held-out pair (:func:`train_reranker`).

``evaluate`` draws ``--samples`` images (8) for every caption of seen pairs and of
held-out pairs and asks two classifiers what they show: the shipped ``vit_shapes`` (the
shape; it knows nothing of colour) and ``resnet_colors``, trained here on the same world
to name the shape's colour (both measured on real images of the world first). It judges
every plain sample, and, as DALL-E does (Ramesh et al. 2021, Section 2.6), the one
sample per caption that a mini-CLIP scores highest: ``clip_dalle_world`` and, for
comparison, chapter 5's ``clip_world_tiny`` (the rerankers are not the judges). It does
so at every classifier-free guidance scale of ``--guidance-scales``
(:data:`GUIDANCE_SCALES`; 1 is plain sampling), then reranks the best of N drawings for
N up to 32 (``--best-of``) at the scale chosen on the seen pairs.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import sys
import time

import torch
import torch.nn.functional as F

from ..checkpoints import info, load, register
from ..clip_world import HELD_OUT as CLIP_HELD_OUT
from ..clip_world import Pairs, WordTokenizer
from ..data import SHAPES_MEAN, SHAPES_STD
from ..data.backgrounds import COLOR_NAMES
from ..data.shapes import SHAPE_NAMES
from ..models import create_model
from ..models.dalle import HELD_OUT, CaptionedShapes, CaptionTokenizer, caption_for, null_caption, world_layout
from ..models.dvae import elbo_terms, kl_to_uniform
from ..runtime import seed_everything
from ..train.loop import param_groups
from ..train.schedule import TimeBudget, warmup_cosine_scheduler
from .provenance import write_results

__all__ = ["main"]

logger = logging.getLogger(__name__)

TRAIN_SIZE = 20_000
VAL_SIZE = 1_000
TEST_SIZE = 2_000


def _standardise(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images as the shipped shape classifier and the colour classifier expect."""
    mean = torch.tensor(SHAPES_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(SHAPES_STD).view(1, 3, 1, 1)
    return (images - mean) / std


# -- stage 1: the dVAE -------------------------------------------------------------------


@torch.no_grad()
def dvae_metrics(model, images: torch.Tensor) -> dict:
    """Hard-token reconstruction error, codebook use and the bound's terms on ``images``."""
    model.eval()
    tokens = model.tokens(images)
    recon = model.decode_tokens(tokens)
    counts = torch.bincount(tokens.flatten(), minlength=model.config.num_tokens).float()
    p = counts / counts.sum()
    perplexity = math.exp(-(p[p > 0] * p[p > 0].log()).sum().item())
    torch.manual_seed(0)
    terms = elbo_terms(model, images, tau=1 / 16)
    return {
        "mse_hard_tokens": float(F.mse_loss(recon, images)),
        "codes_used": int((counts > 0).sum()),
        "code_perplexity": perplexity,
        **{f"{k}_nats": float(v.mean()) for k, v in terms.items()},
    }


def train_dvae(epochs: int, batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> None:
    seed_everything(seed)
    start = time.perf_counter()
    train = CaptionedShapes("train", TRAIN_SIZE).float_images()
    val = CaptionedShapes("val", VAL_SIZE).float_images()
    test = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False).float_images()
    model = create_model("dvae_tiny_32")
    optimizer = torch.optim.AdamW(param_groups(model, 1e-4), lr=lr)
    steps = epochs * (len(train) // batch_size)
    scheduler = warmup_cosine_scheduler(optimizer, steps, warmup_steps=steps // 20)
    generator = torch.Generator().manual_seed(seed)
    n_pixels = train[0].numel()
    sigma = model.config.sigma
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for i in range(len(train) // batch_size):
            progress = step / max(steps - 1, 1)
            tau = 1.0 * (1 / 16) ** progress  # exponential anneal 1 -> 1/16
            beta = min(1.0, 2 * progress)  # 0 -> 1 over the first half
            batch = train[order[i * batch_size : (i + 1) * batch_size]]
            out = model(batch, tau=tau)
            reconstruction = ((batch - out.recon) ** 2).flatten(1).sum(1) / (2 * sigma**2)
            loss = (reconstruction + beta * kl_to_uniform(out.logits)).mean() / n_pixels
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
        logger.info("dvae epoch %d: %s", epoch + 1, dvae_metrics(model, val))
    metrics = {"val": dvae_metrics(model, val), "test": dvae_metrics(model, test)}
    metrics["train_seconds"] = round(time.perf_counter() - start, 1)
    register(
        "dvae_world",
        model.eval(),
        "dvae_tiny_32",
        dict(vars(model.config)),
        description="tiny dVAE (Gumbel-softmax): 32x32 world images -> 8x8 tokens of 128 codes",
        data={"name": "world_captions", "world": "DALLE_WORLD", "train_size": TRAIN_SIZE,
              "held_out_excluded": [list(p) for p in HELD_OUT], "seed": seed},
        recipe={"epochs": epochs, "batch_size": batch_size, "lr": lr, "tau": "1 -> 1/16 exponential",
                "beta": "0 -> 1 over the first half", "seed": seed},
        metrics=metrics,
        build="python -m vitcourse.scripts.train_dalle dvae",
    )  # fmt: skip
    print("dvae_world:", metrics["test"])


# -- stage 1b: the decoder again, on the hard tokens that generation decodes ----------

FROZEN_PARTS = ("encoder", "codebook")
"""The dVAE's parts :func:`train_decoder` keeps: what makes the tokens and embeds them."""


def frozen_fingerprint(dvae) -> str:
    """sha256 of the frozen parameters (:data:`FROZEN_PARTS`), name and bytes of each."""
    digest = hashlib.sha256()
    for name, tensor in sorted(dvae.state_dict().items()):
        if name.split(".")[0] in FROZEN_PARTS:
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def tokens_fingerprint(dvae, images: torch.Tensor) -> str:
    """sha256 of the argmax tokens of ``images`` (int64, raster order)."""
    return hashlib.sha256(dvae.tokens(images).to(torch.int64).numpy().tobytes()).hexdigest()


def _held_out_mask(data: CaptionedShapes) -> torch.Tensor:
    return torch.tensor([(SHAPE_NAMES[s], COLOR_NAMES[c]) in HELD_OUT
                         for s, c in zip(data.shapes.tolist(), data.colors.tolist())])  # fmt: skip


@torch.no_grad()
def rebuild_readings(dvae, data: CaptionedShapes) -> dict:
    """What the judges read in the dVAE's rebuildings (:func:`rebuild`) of ``data``'s images.

    Returns:
        ``mse_hard_tokens`` and the :func:`judge` rates over all images, and the rates for
        the images of seen pairs (``seen``) and of held-out pairs (``held_out``).
    """
    images = data.float_images()
    rebuilt = rebuild(dvae, images)
    held = _held_out_mask(data)
    out = {"mse_hard_tokens": float(F.mse_loss(rebuilt, images)), **judge(rebuilt, data.shapes, data.colors)}
    for key, mask in (("seen", ~held), ("held_out", held)):
        out[key] = judge(rebuilt[mask], data.shapes[mask], data.colors[mask]) if mask.any() else {"n": 0}
    return out


@torch.no_grad()
def _both_ok(dvae, data: CaptionedShapes) -> torch.Tensor:
    """``(N,)`` bool: the judges read shape and colour in the rebuilding of each image."""
    shape_ok, color_ok = judged(rebuild(dvae, data.float_images()), data.shapes, data.colors)
    return shape_ok & color_ok


def paired_gain(before: torch.Tensor, after: torch.Tensor) -> dict:
    """The change of a rate measured on the same items twice, with its standard error.

    ``gain = (c - b) / n`` where ``b`` items went right → wrong and ``c`` wrong → right;
    ``standard_error = sqrt(b + c - (c - b)² / n) / n`` (McNemar's paired difference).
    """
    n = len(before)
    b = int((before & ~after).sum())
    c = int((~before & after).sum())
    gain = (c - b) / n
    return {"gain": gain, "standard_error": math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n,
            "right_to_wrong": b, "wrong_to_right": c, "n": n}  # fmt: skip


@torch.no_grad()
def widen_decoder(narrow: torch.nn.Module, wide: torch.nn.Module) -> None:
    """Start a wider decoder as the narrow one, function for function.

    Every convolution of ``wide`` gets ``narrow``'s weights in its old channels; its new
    channels keep their random initialisation, except the weights from a new input
    channel into an old output channel, which are zero. The old channels so compute
    exactly what they did (the residual blocks too: ``x + f(x)`` keeps old channels old),
    the new ones start as random features the next layer does not read yet, and their
    gradients are not zero (widening as in Net2Net, Chen et al. 2016, with zero fan-out).
    """
    layers = [m for m in wide.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    old_layers = [m for m in narrow.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    if len(layers) != len(old_layers):
        raise ValueError("the two decoders differ in more than width")
    for new, old in zip(layers, old_layers):
        out_dim, in_dim = (1, 0) if isinstance(new, torch.nn.ConvTranspose2d) else (0, 1)
        n_out, n_in = old.weight.shape[out_dim], old.weight.shape[in_dim]
        block = [slice(None)] * 4
        block[out_dim], block[in_dim] = slice(0, n_out), slice(0, n_in)
        new.weight[tuple(block)] = old.weight
        block[in_dim] = slice(n_in, None)
        new.weight[tuple(block)] = 0.0
        new.bias[:n_out] = old.bias


def train_decoder(
    minutes: float,
    init_from: str = "dvae_world",
    epochs: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    test_size: int = TEST_SIZE,
    validate_every: float = 2.0,
    decoder_hidden: int | None = None,
    root: str | None = None,
    force: bool = False,
    command: str = "python -m vitcourse.scripts.train_dalle decoder",
) -> dict | None:
    """Stage 1b: train the dVAE's decoder again on the *hard* tokens generation decodes.

    Stage 1 (:func:`train_dvae`) trains the decoder on Gumbel-softmax samples; generation
    decodes each cell's argmax code (:meth:`~vitcourse.models.dvae.DVAE.decode_tokens`).
    Here the encoder and the codebook stay frozen (:data:`FROZEN_PARTS`: the tokens, so
    stage 2's sequences and the reranker, stay valid, bit for bit) and only the decoder
    learns, with the stage's own likelihood: the Gaussian of std ``σ``
    (``Σ (x - μ)² / 2σ²``, per pixel) of ``decode_tokens(tokens(x))`` on the training
    images. The cosine of :class:`~vitcourse.train.schedule.TimeBudget` ends with ``minutes``. With
    ``decoder_hidden`` wider than the base's, the decoder is a wider one
    (:class:`~vitcourse.models.dvae.DVAEConfig`) that starts as the base's
    (:func:`widen_decoder`).

    The card records the base (sha256, recipe, metrics, build), the fingerprints of the
    frozen parameters and of the validation images' tokens, and, before and after, the
    hard-token error and the judges' reading of the rebuildings of the real validation
    and test images (:func:`rebuild_readings`, seen and held-out pairs apart). It is
    registered only if the judges read shape and colour in the validation rebuildings
    more often by more than two paired standard errors (:func:`paired_gain`), unless
    ``force``.

    Returns:
        The card written, or None when the decoder did not improve.
    """
    from .provenance import provenance

    seed_everything(seed)
    start = time.perf_counter()
    base, model = info(init_from), load(init_from)  # the shipped one; ``root`` is where the new one goes
    config = dict(base["config"])
    if decoder_hidden is not None and decoder_hidden != (config.get("decoder_hidden") or config["hidden"]):
        config["decoder_hidden"] = decoder_hidden  # a new, wider decoder; the frozen parts copied
        wide = create_model(base["model"], **config)
        frozen = {k: v for k, v in model.state_dict().items() if k.split(".")[0] in FROZEN_PARTS}
        missing, unexpected = wide.load_state_dict(frozen, strict=False)
        if unexpected or any(k.split(".")[0] in FROZEN_PARTS for k in missing):
            raise RuntimeError(f"frozen parts did not transfer: {missing}, {unexpected}")
        widen_decoder(model.decoder, wide.decoder)
        model = wide
    train = CaptionedShapes("train", train_size).float_images()
    val = CaptionedShapes("val", val_size, exclude_held_out=False)
    test = CaptionedShapes("test", test_size, exclude_held_out=False)
    val_images = val.float_images()
    frozen_before, tokens_before = frozen_fingerprint(model), tokens_fingerprint(model, val_images)
    before = {"val": rebuild_readings(model, val), "test": rebuild_readings(model, test)}
    val_ok_before = _both_ok(model, val)
    for part in FROZEN_PARTS:
        getattr(model, part).requires_grad_(False)
    with torch.no_grad():
        tokens = torch.cat([model.tokens(train[i : i + 500]) for i in range(0, len(train), 500)])
    optimizer = torch.optim.AdamW(param_groups(model.decoder, 1e-4), lr=lr)
    steps_per_epoch = len(train) // batch_size
    budget = TimeBudget(epochs * steps_per_epoch, minutes, warmup=steps_per_epoch // 2)
    generator = torch.Generator().manual_seed(seed)
    sigma = model.config.sigma
    prep_seconds = time.perf_counter() - start
    history: list[dict] = []

    def validate(step: int) -> None:
        model.eval()
        reading = rebuild_readings(model, val)
        history.append({"epoch": round(step / steps_per_epoch, 2), "minutes": round(budget.elapsed() / 60, 2),
                        "val_mse_hard_tokens": reading["mse_hard_tokens"], "val_shape": reading["shape"],
                        "val_color": reading["color"], "val_both": reading["both"]})  # fmt: skip
        logger.info("decoder: %s", history[-1])
        model.train()

    step, last = 0, 0.0
    model.train()
    budget.start()
    while budget.progress(step) < 1:
        order = torch.randperm(len(train), generator=generator)
        for i in range(steps_per_epoch):
            if budget.progress(step) >= 1:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr * budget.lr_factor(step)
            index = order[i * batch_size : (i + 1) * batch_size]
            images = train[index]
            recon = model.decode_tokens(tokens[index])
            loss = (((images - recon) ** 2).flatten(1).sum(1) / (2 * sigma**2)).mean() / images[0].numel()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if budget.elapsed() - last >= validate_every * 60:
                last = budget.elapsed()
                validate(step)
    train_seconds = budget.elapsed()
    validate(step)
    model.eval()
    if frozen_fingerprint(model) != frozen_before or tokens_fingerprint(model, val_images) != tokens_before:
        raise RuntimeError("the encoder or the codebook changed: the tokens are no longer the base's")
    gain = paired_gain(val_ok_before, _both_ok(model, val))
    after = {split: {**dvae_metrics(model, data.float_images()), **rebuild_readings(model, data)}
             for split, data in (("val", val), ("test", test))}  # fmt: skip
    if gain["gain"] <= 2 * gain["standard_error"] and not force:
        logger.warning("not registered: validation reading gain %s", gain)
        print("decoder not registered:", gain, {k: after[k]["both"] for k in after})
        return None
    keys = ("sha256", "recipe", "metrics", "build", "date", "provenance")
    recipe = {
        "stage": "1b: the decoder again, on the argmax tokens generation decodes",
        "init_from": init_from,
        "base": {k: base[k] for k in keys if k in base},
        "frozen": list(FROZEN_PARTS),
        "trained": "decoder" if config == base["config"] else f"the decoder, widened to decoder_hidden={decoder_hidden} "
                                                              "(widen_decoder: starts as the base's)",
        "frozen_sha256": frozen_before,
        "val_tokens_sha256": tokens_before,
        "loss": "Gaussian log-likelihood of the dVAE (sigma = config.sigma): sum (x - decode_tokens(tokens(x)))^2 / "
                "2 sigma^2 per pixel",
        "epochs": round(step / steps_per_epoch, 2), "steps": step, "max_minutes": minutes, "batch_size": batch_size,
        "lr": lr, "warmup_steps": steps_per_epoch // 2, "schedule": "linear warm-up, cosine to 0 over the minutes",
        "weight_decay": 1e-4, "seed": seed,
    }  # fmt: skip
    metrics = {**after, "before": before, "val_both_gain": gain, "history": history,
               "train_seconds": round(train_seconds, 1),
               "total_train_seconds": round(train_seconds + base["metrics"]["train_seconds"], 1)}  # fmt: skip
    card = register(
        "dvae_world",
        model,
        base["model"],
        config,
        root=root,
        description="tiny dVAE: 32x32 world images -> 8x8 tokens of 128 codes; encoder and codebook trained "
                    "with the Gumbel-softmax (stage 1a), decoder trained again on the argmax tokens (stage 1b)",
        data={**base["data"], "val_size": val_size, "test_size": test_size,
              "evaluated_on": "val and test with every pair (held-out pairs apart)"},
        recipe=recipe,
        metrics=metrics,
        provenance=provenance(start, prep_seconds=round(prep_seconds, 1), command=command,
                              threads=torch.get_num_threads()),
        build=command,
    )  # fmt: skip
    print("dvae_world:", {k: (after[k]["mse_hard_tokens"], after[k]["both"]) for k in after}, gain)
    return card


# -- the colour judge -----------------------------------------------------------------


COLOR_MODEL = "resnet_pico"
COLOR_CONFIG = {"img_size": 32, "in_chans": 3, "num_classes": len(COLOR_NAMES)}


def train_colors(epochs: int = 15, batch_size: int = 128, seed: int = 0) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from ..train import evaluate, fit

    start = time.perf_counter()
    # All pairs, held-out ones included: this model measures, it is not the one tested.
    train = CaptionedShapes("train", 8000, seed=1, exclude_held_out=False)
    test = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False)
    loaders = [
        DataLoader(TensorDataset(_standardise(d.float_images()), d.colors), batch_size=batch_size, shuffle=shuffle)
        for d, shuffle in ((train, True), (test, False))
    ]
    model = create_model(COLOR_MODEL, **COLOR_CONFIG)
    fit(model, loaders[0], epochs=epochs, lr=2e-3, seed=seed, quiet=True)
    accuracy = float(evaluate(model, loaders[1])["accuracy"])
    register(
        "resnet_colors",
        model.eval(),
        COLOR_MODEL,
        COLOR_CONFIG,
        description="tiny ResNet naming the colour of the world's one shape (10 colours); judges DALL-E",
        data={"name": "world_captions", "world": "DALLE_WORLD", "train_size": 8000, "seed": 1,
              "normalize": True},
        recipe={"epochs": epochs, "batch_size": batch_size, "lr": 2e-3, "seed": seed},
        metrics={"test_accuracy": accuracy, "train_seconds": round(time.perf_counter() - start, 1)},
        classes=list(COLOR_NAMES),
        build="python -m vitcourse.scripts.train_dalle colors",
    )  # fmt: skip
    print(f"resnet_colors: test accuracy {accuracy:.4f}")


# -- stage 2: the transformer ---------------------------------------------------------

TEXT_WEIGHT = 1 / 8  # the paper's weights of the caption's and the image's losses
IMAGE_WEIGHT = 7 / 8


@torch.no_grad()
def encode_dataset(data: CaptionedShapes, dvae, tokenizer: CaptionTokenizer, layout) -> torch.Tensor:
    """Full sequences ``(N, 1 + text_len + 64)``: start, caption ids, the dVAE's tokens."""
    images = data.float_images()
    image_tokens = torch.cat([dvae.tokens(images[i : i + 500]) for i in range(0, len(images), 500)])
    return layout.join(tokenizer.encode(data.captions), image_tokens)


def sequence_loss(
    model, sequences: torch.Tensor, text_len: int, captioned: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weighted loss, caption loss, image loss)``, each a mean per token, in nats.

    ``captioned`` (``(B,)`` bool) marks the rows whose caption is real; the caption loss
    averages over those only (a dropped caption, :func:`drop_captions`, is not text to
    learn)."""
    logits = model(sequences[:, :-1])  # (B, T - 1, V): position i predicts token i + 1
    nll = F.cross_entropy(logits.transpose(1, 2), sequences[:, 1:], reduction="none")  # (B, T - 1)
    text_rows = nll[:, :text_len] if captioned is None else nll[captioned, :text_len]
    text = text_rows.mean() if text_rows.numel() else nll.new_zeros(())
    image = nll[:, text_len:].mean()
    return TEXT_WEIGHT * text + IMAGE_WEIGHT * image, text, image


def drop_captions(
    sequences: torch.Tensor, text_len: int, p: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption dropout for classifier-free guidance: with probability ``p`` per row, the
    caption becomes the empty one (:func:`~vitcourse.models.dalle.null_caption`, all
    ``<pad>``; the start token and the image tokens stay).

    Returns:
        ``(sequences, captioned)``: a copy with the dropped captions, ``(B,)`` bool, True
        where the caption was kept.
    """
    captioned = (torch.rand(len(sequences), generator=generator) >= p).to(sequences.device)
    out = sequences.clone()
    out[~captioned, 1 : 1 + text_len] = null_caption(int((~captioned).sum()), text_len).to(out)
    return out, captioned


def total_epochs(card: dict) -> float:
    """Epochs a ``dalle_world`` card's weights have seen, its base runs' included."""
    recipe = card["recipe"]
    return recipe.get("total_epochs", recipe["epochs"])


def train_transformer(
    epochs: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    init_from: str | None = None,
    max_minutes: float | None = None,
    warmup_steps: int | None = None,
    caption_dropout: float = 0.0,
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    root: str | None = None,
    force: bool = False,
    preset: str = "dalle_tiny",
    device: str = "cpu",
    command: str = "python -m vitcourse.scripts.train_dalle transformer",
) -> dict | None:
    """Train stage 2 from scratch or, with ``init_from``, continue a shipped checkpoint.

    Without ``max_minutes`` the learning rate follows a warm-up and a cosine over
    ``epochs`` (the shipped recipe). With it, :class:`~vitcourse.train.schedule.TimeBudget` runs the
    cosine over steps or wall time, whichever is further along, so a run that hits the
    budget still ends at a learning rate of zero (possibly inside an epoch; the card
    counts fractional epochs). A continued run starts a new schedule and a new AdamW
    (the checkpoint keeps no optimiser state); its card records the base checkpoint
    (sha256, recipe, metrics, build) and the epochs of both runs. It is registered only
    if it lowers the validation image NLL the base has on the same images, unless
    ``force``.

    ``caption_dropout`` ``p`` > 0 replaces each training caption by the empty one with
    probability ``p`` (:func:`drop_captions`), so that the model also learns to draw
    without a caption: what classifier-free guidance needs
    (:func:`~vitcourse.models.dalle.generate_images` with ``guidance_scale``). The
    validation losses always read the real captions.

    ``preset`` names the model a run from scratch builds (``dalle_tiny``, or
    ``dalle_small`` for a GPU); a continued run keeps its base's. ``device`` is where it
    trains (``"cuda"`` on a GPU); the data and the random streams stay on the CPU, so
    only the arithmetic moves.

    Returns:
        The card written, or None when a continued run did not improve.
    """
    from .provenance import provenance

    seed_everything(seed)
    start = time.perf_counter()
    dvae = load("dvae_world")
    tokenizer, layout = CaptionTokenizer(), world_layout()
    train = encode_dataset(CaptionedShapes("train", train_size), dvae, tokenizer, layout).to(device)
    val = encode_dataset(CaptionedShapes("val", val_size), dvae, tokenizer, layout).to(device)
    base = None
    if init_from is not None:
        base = info(init_from)
        preset, model = base["model"], load(init_from).train()
        logger.info("continuing %s (%s epochs so far)", init_from, total_epochs(base))
    else:
        model = create_model(preset)
    model.to(device)
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=lr, betas=(0.9, 0.95))
    steps_per_epoch = len(train) // batch_size
    max_steps = epochs * steps_per_epoch
    warmup = steps_per_epoch // 2 if warmup_steps is None else warmup_steps
    budget = TimeBudget(max_steps, math.inf if max_minutes is None else max_minutes, warmup)
    if not 0 <= caption_dropout < 1:
        raise ValueError(f"caption_dropout is a probability in [0, 1), got {caption_dropout}")
    generator = torch.Generator().manual_seed(seed)
    dropout_generator = torch.Generator().manual_seed(seed + 1)  # p = 0 leaves the order as before
    done = 0.0 if base is None else total_epochs(base)
    history = [] if base is None else list(base["metrics"]["history"])
    prep_seconds = time.perf_counter() - start

    def val_losses() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            _, text, image = sequence_loss(model, val, layout.text_len)
        model.train()
        return float(text), float(image)

    val_null = drop_captions(val, layout.text_len, 1.0, torch.Generator())[0] if caption_dropout > 0 else None

    def validate(step: int) -> None:
        text, image = val_losses()
        history.append({"epoch": round(done + step / steps_per_epoch, 2), "val_text_nll": text,
                        "val_image_nll": image, "minutes": round(budget.elapsed() / 60, 1)})  # fmt: skip
        if val_null is not None:  # the same images after the empty caption: what the caption is worth
            model.eval()
            with torch.no_grad():
                history[-1]["val_image_nll_null_caption"] = float(sequence_loss(model, val_null, layout.text_len)[2])
            model.train()
        logger.info("transformer epoch %s: %s", history[-1]["epoch"], history[-1])

    at_start = val_losses()[1] if base is not None else None  # the bar a continued run must beat
    step = 0
    budget.start()
    while budget.progress(step) < 1:
        order = torch.randperm(len(train), generator=generator)
        epoch_start = step
        for i in range(steps_per_epoch):
            if budget.progress(step) >= 1:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr * budget.lr_factor(step)
            batch, captioned = train[order[i * batch_size : (i + 1) * batch_size].to(device)], None
            if caption_dropout > 0:
                batch, captioned = drop_captions(batch, layout.text_len, caption_dropout, dropout_generator)
            loss, _, _ = sequence_loss(model, batch, layout.text_len, captioned)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
        if step > epoch_start:
            validate(step)
    train_seconds = budget.elapsed()
    model.eval().cpu()
    final = history[-1]
    if base is not None and final["val_image_nll"] >= at_start and not force:
        logger.warning("not registered: val image NLL %.4f, the base's %.4f", final["val_image_nll"], at_start)
        return None
    run_epochs = round(step / steps_per_epoch, 2)
    recipe = {"epochs": run_epochs, "total_epochs": round(done + run_epochs, 2), "steps": step,
              "max_epochs": epochs, "max_minutes": max_minutes, "batch_size": batch_size, "lr": lr,
              "warmup_steps": warmup, "schedule": "linear warm-up, cosine to 0 over steps or minutes",
              "weight_decay": 0.01, "betas": [0.9, 0.95], "grad_clip": 1.0,
              "loss_weights": {"text": TEXT_WEIGHT, "image": IMAGE_WEIGHT}, "seed": seed,
              "device": str(device)}  # fmt: skip
    if caption_dropout > 0:
        recipe["caption_dropout"] = {
            "p": caption_dropout,
            "null_caption": "every caption token <pad> (id 0) after the start token; no caption loss on those rows",
            "for": "classifier-free guidance (generate_images guidance_scale)",
        }
    if base is not None:
        recipe["init_from"] = init_from
        keys = ("sha256", "recipe", "metrics", "build", "date", "provenance")
        recipe["base"] = {k: base[k] for k in keys if k in base}
        recipe["optimizer_state"] = "new AdamW (the base checkpoint keeps none)"
    metrics = {"val_text_nll": final["val_text_nll"], "val_image_nll": final["val_image_nll"],
               "history": history, "train_seconds": round(train_seconds, 1),
               "seconds_per_epoch": round(train_seconds / max(run_epochs, 1e-9), 1)}  # fmt: skip
    if base is not None:
        metrics["val_image_nll_at_start"] = at_start
        metrics["total_train_seconds"] = round(train_seconds + base["metrics"].get(
            "total_train_seconds", base["metrics"]["train_seconds"]), 1)  # fmt: skip
    c = model.config
    card = register(
        "dalle_world",
        model,
        preset,
        {},
        root=root,
        description=f"DALL-E transformer ({preset}): Spanish caption + 64 dVAE tokens (dvae_world), "
                    f"D={c.embed_dim}, {c.depth} blocks",
        data={"name": "world_captions", "world": "DALLE_WORLD", "train_size": train_size, "val_size": val_size,
              "held_out_excluded": [list(p) for p in HELD_OUT], "tokenizer": "dvae_world (argmax tokens)"},
        recipe=recipe,
        metrics=metrics,
        provenance=provenance(start, prep_seconds=round(prep_seconds, 1), command=command),
        build=command,
    )  # fmt: skip
    print("dalle_world:", final)
    return card


# -- evaluation: does the drawing show what the caption asks? --------------------------


@torch.no_grad()
def judged(images: torch.Tensor, shapes: torch.Tensor, colors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, ``(N,)`` bools: ``vit_shapes`` sees the asked shape; ``resnet_colors`` the asked colour."""
    x = _standardise(images)
    return load("vit_shapes")(x).argmax(1) == shapes, load("resnet_colors")(x).argmax(1) == colors


def judge(images: torch.Tensor, shapes: torch.Tensor, colors: torch.Tensor) -> dict:
    """Rates at which ``vit_shapes`` sees the asked shape and ``resnet_colors`` the asked colour."""
    shape_ok, color_ok = judged(images, shapes, colors)
    return {
        "shape": float(shape_ok.float().mean()),
        "color": float(color_ok.float().mean()),
        "both": float((shape_ok & color_ok).float().mean()),
        "n": len(shapes),
    }


def caption_grid(pairs, per_pair: int, seed: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Captions asking for each (shape, colour) pair ``per_pair`` times, sizes and positions drawn."""
    generator = torch.Generator().manual_seed(seed)
    captions, shapes, colors = [], [], []
    for shape, color in pairs:
        for _ in range(per_pair):
            size = 1 + int(torch.randint(2, (1,), generator=generator))  # mediano or grande
            position = int(torch.randint(9, (1,), generator=generator))
            captions.append(caption_for(shape, color, size, position))
            shapes.append(SHAPE_NAMES.index(shape))
            colors.append(COLOR_NAMES.index(color))
    return captions, torch.tensor(shapes), torch.tensor(colors)


# -- the reranker: a mini-CLIP of this world ----------------------------------------

RERANKER = "clip_dalle_world"
"""The mini-CLIP ``evaluate`` reranks with, trained by ``train_dalle reranker``."""
RERANKER_CONFIG: dict = {}
"""Chapter 5's ``clip_world_tiny`` preset as it is (8×8 patches, 16 image tokens)."""
RERANKER_STEPS = 4000
OTHER_RERANKER = "clip_world_tiny"
"""Chapter 5's mini-CLIP (another world: one or two smaller shapes, rotated), also measured."""


@torch.no_grad()
def rebuild(dvae, images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` images in ``[0, 1]`` as the dVAE rebuilds them from their tokens."""
    return torch.cat([dvae.decode_tokens(dvae.tokens(images[i : i + 500])) for i in range(0, len(images), 500)])


def reranker_trained_on() -> str:
    """Which of stage 2's training pairs the shipped reranker saw, from the two cards
    (``CaptionedShapes("train", n)`` draws every sample from its index, so a smaller
    ``n`` gives the first ``n`` of a larger set)."""
    seen, stage2 = info(RERANKER)["data"]["train_size"], info("dalle_world")["data"]["train_size"]
    if seen >= stage2:
        return f"dalle_world's {stage2} stage-2 training pairs (no held-out pair)"
    return f"the first {seen} of dalle_world's {stage2} stage-2 training pairs (no held-out pair)"


def reranker_pairs(size: int = TRAIN_SIZE) -> Pairs:
    """Stage 2's training pairs as a mini-CLIP's: the same images and captions (same
    split, seed and size; no held-out pair)."""
    data = CaptionedShapes("train", size)
    present = [[(SHAPE_NAMES[s], COLOR_NAMES[c])] for s, c in zip(data.shapes.tolist(), data.colors.tolist())]
    return Pairs(data.float_images(), data.captions, present)


def train_reranker(steps: int = RERANKER_STEPS, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                   train_size: int = TRAIN_SIZE, test_size: int = TEST_SIZE, root: str | None = None,
                   command: str = "python -m vitcourse.scripts.train_dalle reranker") -> dict:  # fmt: skip
    """DALL-E's reranker for this world: chapter 5's mini-CLIP trained, with chapter 5's
    loop (:func:`vitcourse.scripts.train_clip.train`: symmetric InfoNCE, learned
    temperature), on exactly stage 2's training pairs (:func:`reranker_pairs`), then
    measured on the real test images (:func:`reranker_on_real`, held-out pairs apart).

    Returns:
        The card written (``clip_dalle_world``).
    """
    from .provenance import provenance
    from .train_clip import train as train_clip

    start = time.perf_counter()
    pairs = reranker_pairs(train_size)
    model, record = train_clip(steps, batch_size, lr, seed=seed, overrides=RERANKER_CONFIG, pairs=pairs)
    train_seconds = time.perf_counter() - start
    real = CaptionedShapes("test", test_size, exclude_held_out=False)
    metrics = {"on_real_test_images": reranker_on_real(model, WordTokenizer(), real),
               "temperature": model.temperature, "train_seconds": round(train_seconds, 1)}  # fmt: skip
    c = model.config
    card = register(
        RERANKER,
        model,
        "clip_world_tiny",
        RERANKER_CONFIG,
        root=root,
        description=f"DALL-E's reranker: mini-CLIP (ViT {c.vision_width}x{c.vision_depth} on {c.patch_size}x"
                    f"{c.patch_size} patches + text {c.text_width}x{c.text_depth}) trained contrastively on "
                    "dalle_world's stage-2 training pairs",
        data={"name": "world_captions", "world": "DALLE_WORLD", "split": "train", "train_size": train_size,
              "same_as": "dalle_world's stage-2 training pairs (CaptionedShapes('train', train_size))",
              "held_out_excluded": [list(p) for p in HELD_OUT]},
        recipe={**record["recipe"], "seed": seed, "trainer": "vitcourse.scripts.train_clip.train"},
        metrics=metrics,
        history=record["history"],
        provenance=provenance(start, command=command, threads=torch.get_num_threads()),
        build=command,
    )  # fmt: skip
    print(f"{RERANKER}: {metrics}")
    return card


@torch.no_grad()
def reranker_on_real(clip, clip_tokenizer, real: CaptionedShapes, images: torch.Tensor | None = None) -> dict:
    """Does the reranker read these captions? For each real image, which of the 80
    shape–colour captions (with the image's own size and position) it scores highest.
    ``images`` (``(N, 3, H, W)`` in ``[0, 1]``) replaces the real images, e.g. by the
    dVAE's rebuildings of them (:func:`rebuild`).

    Returns:
        ``shape``, ``color``, ``both`` rates and ``n`` over all images, and the same
        for the images of seen pairs (``seen``) and of held-out pairs (``held_out``).
    """
    from ..clip_world import encode_images, encode_texts

    pairs = [(s, c) for s in range(len(SHAPE_NAMES)) for c in range(len(COLOR_NAMES))]
    layouts = {caption_for(SHAPE_NAMES[s], COLOR_NAMES[c], size, position): (size, position)
               for s, c in pairs for size in range(3) for position in range(9)}  # fmt: skip
    texts = list(layouts)
    text_features = encode_texts(clip, clip_tokenizer, texts)
    row = {text: i for i, text in enumerate(texts)}
    image_features = encode_images(clip, real.float_images() if images is None else images)
    chosen = []
    for feature, caption in zip(image_features, real.captions):
        size, position = layouts[caption]
        candidates = [row[caption_for(SHAPE_NAMES[s], COLOR_NAMES[c], size, position)] for s, c in pairs]
        chosen.append(pairs[int((text_features[candidates] @ feature).argmax())])
    shape_ok = torch.tensor([s for s, _ in chosen]) == real.shapes
    color_ok = torch.tensor([c for _, c in chosen]) == real.colors
    held = torch.tensor([(SHAPE_NAMES[s], COLOR_NAMES[c]) in HELD_OUT
                         for s, c in zip(real.shapes.tolist(), real.colors.tolist())])  # fmt: skip

    def rates(mask: torch.Tensor) -> dict:
        return {"shape": float(shape_ok[mask].float().mean()), "color": float(color_ok[mask].float().mean()),
                "both": float((shape_ok & color_ok)[mask].float().mean()), "n": int(mask.sum())}  # fmt: skip

    return {**rates(torch.ones_like(held)), "seen": rates(~held), "held_out": rates(held)}


GUIDANCE_SCALES = (1.0, 1.5, 2.0, 3.0, 5.0)
"""Classifier-free guidance scales ``evaluate`` sweeps (1: plain sampling)."""


def best_scale(results: dict) -> dict:
    """The row of ``results["guidance"]["sweep"]`` whose drawings of *seen* pairs show
    shape and colour most often (the held-out pairs do not choose it)."""
    return max(results["guidance"]["sweep"], key=lambda row: row["generated_seen"]["both"])


BEST_OF = (1, 2, 4, 8, 16, 32)
"""Drawings per caption the reranker chooses among in ``evaluate``'s best-of-N curve."""


def draw(transformer, dvae, layout, ids: torch.Tensor, samples: int, generator: torch.Generator,
         **sampling) -> torch.Tensor:  # fmt: skip
    """``samples`` drawings of every caption: ``(samples, B, 3, H, W)`` on the CPU, round
    ``r`` of every caption before round ``r + 1`` (``sampling``: temperature, top_k,
    guidance_scale). The models draw on their own device; ``generator`` (CPU) picks the
    tokens, so a seed gives the same drawings up to float rounding on either device."""
    from ..models.dalle import generate_images

    device = next(transformer.parameters()).device
    ids = ids.to(device)
    rounds = []
    for _ in range(samples):
        batches = [generate_images(transformer, dvae, layout, ids[i : i + 100], generator=generator,
                                   **sampling)[0].cpu()
                   for i in range(0, len(ids), 100)]  # fmt: skip
        rounds.append(torch.cat(batches))
    return torch.stack(rounds)


def best_of(clip, clip_tokenizer, draws: torch.Tensor, captions: list[str], shapes: torch.Tensor,
            colors: torch.Tensor, n: int) -> dict:  # fmt: skip
    """The judges on the reranker's choice among ``n`` drawings per caption, for each of the
    ``len(draws) // n`` disjoint groups of ``n`` rounds: the mean rates and, per group,
    ``*_per_group`` (their spread)."""
    from ..models.dalle import rerank

    groups = [judge(rerank(clip, clip_tokenizer, draws[g : g + n], captions)[0], shapes, colors)
              for g in range(0, len(draws) - n + 1, n)]  # fmt: skip
    out = {what: sum(r[what] for r in groups) / len(groups) for what in ("shape", "color", "both")}
    out |= {f"{what}_per_group": [r[what] for r in groups] for what in ("shape", "color", "both")}
    return {**out, "n": len(shapes), "groups": len(groups)}


def evaluate_generations(per_pair_seen: int = 5, per_pair_held_out: int = 20, temperature: float = 1.0,
                         top_k: int | None = None, seed: int = 0, samples: int = 8,
                         guidance_scales: tuple[float, ...] = GUIDANCE_SCALES, best_of_n: tuple[int, ...] = BEST_OF,
                         root: str | None = None, device: str = "cpu",
                         command: str = "python -m vitcourse.scripts.train_dalle evaluate") -> dict:  # fmt: skip
    """Judge plain samples and DALL-E's best-of-N reranked by a mini-CLIP.

    Every caption is drawn ``samples`` times at every classifier-free guidance scale of
    ``guidance_scales`` (``results["guidance"]["sweep"]``, each scale from the same seed):
    ``generated_*`` judges all of those plain drawings, ``reranked_*`` only the one the
    reranker (:data:`RERANKER`, trained on stage 2's pairs) scores highest per caption,
    ``reranked_other_*`` the one chapter 5's :data:`OTHER_RERANKER` prefers. The judges
    (``vit_shapes``, ``resnet_colors``) never choose. The top-level ``generated_*`` and
    ``reranked_*`` are those of scale 1, plain sampling. Then, at the scale whose plain
    drawings of seen pairs are best (:func:`best_scale`), ``max(best_of_n)`` new rounds
    (seed + 1) give the reranker's best of N for every N of ``best_of_n``
    (``results["best_of_n"]``, over disjoint groups of rounds: :func:`best_of`).

    ``device`` is where the transformer and the dVAE draw (``"cuda"`` for a quick
    reading of a candidate on a GPU); the judges, the rerankers and the random streams
    stay on the CPU. The shipped results are read on the CPU.

    Returns:
        The results written to ``results/dalle_world.json`` (under ``root`` if given).
    """
    from ..models.dalle import bound_terms

    if samples < 1:
        raise ValueError(f"samples is the drawings per caption to rerank: at least 1, got {samples}")
    if 1 not in guidance_scales or not all(s > 0 for s in guidance_scales):
        raise ValueError(f"guidance_scales must be > 0 and include 1 (plain sampling), got {guidance_scales}")
    start = time.perf_counter()
    dvae, transformer = load("dvae_world"), load("dalle_world")
    words = WordTokenizer()
    clip, other_clip = load(RERANKER), load(OTHER_RERANKER)
    tokenizer, layout = CaptionTokenizer(), world_layout()
    real = CaptionedShapes("test", TEST_SIZE, exclude_held_out=False)
    real_images = real.float_images()
    rebuilt = rebuild(dvae, real_images)  # what the drawings look like at best
    results = {
        "judges_on_real_images": judge(real_images, real.shapes, real.colors),
        "judges_on_dvae_reconstructions": judge(rebuilt, real.shapes, real.colors),
        "reranker_on_real_images": reranker_on_real(clip, words, real),
        "other_reranker_on_real_images": reranker_on_real(other_clip, words, real),
        "reranker_on_dvae_reconstructions": reranker_on_real(clip, words, real, images=rebuilt),
    }
    seen = [(s, c) for s in SHAPE_NAMES for c in COLOR_NAMES if (s, c) not in HELD_OUT]
    groups = {"seen": caption_grid(seen, per_pair_seen, seed),
              "held_out": caption_grid(list(HELD_OUT), per_pair_held_out, seed)}  # fmt: skip
    sampling = {"temperature": temperature, "top_k": top_k}
    transformer.to(device)
    dvae.to(device)
    sweep = []
    for scale in guidance_scales:
        scale_start = time.perf_counter()
        generator = torch.Generator().manual_seed(seed)
        row = {"scale": scale}
        for name, (captions, shapes, colors) in groups.items():
            draws = draw(transformer, dvae, layout, tokenizer.encode(captions), samples, generator,
                         guidance_scale=scale, **sampling)  # fmt: skip
            plain = judge(draws.flatten(0, 1), shapes.repeat(samples), colors.repeat(samples))
            per_draw = [judge(d, shapes, colors) for d in draws]
            for what in ("shape", "color", "both"):
                plain[f"{what}_per_draw"] = [r[what] for r in per_draw]
            row[f"generated_{name}"] = plain
            for key, model in (("reranked", clip), ("reranked_other", other_clip)):
                row[f"{key}_{name}"] = {k: v for k, v in best_of(model, words, draws, captions, shapes, colors,
                                                                  samples).items() if "per_group" not in k}  # fmt: skip
            logger.info("scale %s, %s: plain %s, reranked %s", scale, name, plain, row[f"reranked_{name}"])
        row["seconds"] = round(time.perf_counter() - scale_start, 1)
        sweep.append(row)
    plain_row = next(row for row in sweep if row["scale"] == 1)
    results.update({k: v for k, v in plain_row.items() if k not in ("scale", "seconds")})
    results["guidance"] = {
        "scales": list(guidance_scales),
        "sweep": sweep,
        "null_caption": "every caption token <pad> (models.dalle.null_caption)",
        "rule": "ln p_s = ln p(z|null) + s (ln p(z|y) - ln p(z|null)), renormalised over the image codes",
        "trained_with": info("dalle_world")["recipe"].get("caption_dropout"),
    }
    chosen = best_scale(results)["scale"]
    curve_start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed + 1)
    curve = {"scale": chosen, "rounds": max(best_of_n), "seed": seed + 1, "rows": []}
    many = {name: draw(transformer, dvae, layout, tokenizer.encode(captions), max(best_of_n), generator,
                       guidance_scale=chosen, **sampling)
            for name, (captions, _, _) in groups.items()}  # fmt: skip
    for n in best_of_n:
        row = {"n": n}
        for name, (captions, shapes, colors) in groups.items():
            row[name] = best_of(clip, words, many[name], captions, shapes, colors, n)
        logger.info("best of %d: seen %s, held out %s", n, row["seen"]["both"], row["held_out"]["both"])
        curve["rows"].append(row)
    curve["seconds"] = round(time.perf_counter() - curve_start, 1)
    results["best_of_n"] = curve
    transformer.cpu()
    dvae.cpu()
    torch.manual_seed(seed)
    batch = real_images[:64]
    terms = bound_terms(transformer, dvae, layout, batch, tokenizer.encode(real.captions[:64]),
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    results["bound_terms_nats_per_image"] = {k: float(v.mean()) for k, v in terms.items()}
    results["sampling"] = {"temperature": temperature, "top_k": top_k, "seed": seed, "guidance_scales": list(guidance_scales),
                           "per_pair_seen": per_pair_seen, "per_pair_held_out": per_pair_held_out,
                           "samples_per_caption": samples, "best_of_n": list(best_of_n), "device": str(device),
                           "generated": "every drawing of every caption judged (samples per caption)",
                           "reranked": f"per caption, the drawing {RERANKER} scores highest",
                           "reranked_other": f"per caption, the drawing {OTHER_RERANKER} scores highest"}  # fmt: skip
    results["held_out_pairs"] = [list(p) for p in HELD_OUT]
    results["reranker"] = {
        "name": RERANKER,
        "sha256": info(RERANKER)["sha256"],
        "trained_on": reranker_trained_on(),
        "judges": ["vit_shapes", "resnet_colors"],
    }
    results["other_reranker"] = {
        "name": OTHER_RERANKER,
        "sha256": info(OTHER_RERANKER)["sha256"],
        "held_out_pairs": [list(p) for p in CLIP_HELD_OUT],
        "saw_dalle_held_out_pairs": [list(p) for p in HELD_OUT if p not in CLIP_HELD_OUT],
    }
    results["checkpoint"] = {"dalle_world": info("dalle_world")["sha256"], "dvae_world": info("dvae_world")["sha256"]}
    path = write_results("dalle_world", results, start, root=root, seeds=[seed, seed + 1],
                         command=command)  # fmt: skip
    print(json_summary(results))
    print(f"wrote {path}")
    return results


def json_summary(results: dict) -> str:
    keys = ("judges_on_real_images", "judges_on_dvae_reconstructions", "reranker_on_real_images",
            "generated_seen", "reranked_seen", "generated_held_out", "reranked_held_out")  # fmt: skip
    lines = [f"{k}: {results[k]}" for k in keys]
    for row in results.get("guidance", {}).get("sweep", []):
        lines.append(f"scale {row['scale']}: " + ", ".join(
            f"{k} both {row[k]['both']:.3f} shape {row[k]['shape']:.3f} color {row[k]['color']:.3f}"
            for k in ("generated_seen", "generated_held_out", "reranked_seen", "reranked_held_out")))  # fmt: skip
    curve = results.get("best_of_n")
    if curve:
        lines.append(f"best of N at scale {curve['scale']}: " + ", ".join(
            f"N={row['n']} seen {row['seen']['both']:.3f} held out {row['held_out']['both']:.3f}"
            for row in curve["rows"]))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["dvae", "decoder", "colors", "transformer", "reranker", "evaluate"])
    parser.add_argument("--epochs", type=int, default=None, help="transformer: the most epochs of this run")
    parser.add_argument("--steps", type=int, default=None, help="reranker: optimisation steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--samples", type=int, default=8, help="evaluate: drawings per caption to rerank")
    parser.add_argument("--best-of", type=lambda text: tuple(int(n) for n in text.split(",")), default=BEST_OF,
                        help="evaluate: the reranker's best of N drawings for these N, e.g. 1,2,4,8")  # fmt: skip
    parser.add_argument("--results-root", default=None, help="evaluate: write the results here (explorations)")
    parser.add_argument("--guidance-scales", type=lambda text: tuple(float(s) for s in text.split(",")),
                        default=GUIDANCE_SCALES, help="evaluate: classifier-free guidance scales, e.g. 1,2,3")  # fmt: skip
    parser.add_argument("--init-from", default=None,
                        help="transformer: continue this checkpoint (dalle_world); decoder: its dVAE (dvae_world)")  # fmt: skip
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="transformer, decoder: wall-time budget; the cosine ends at it")  # fmt: skip
    parser.add_argument("--lr", type=float, default=None, help="transformer: 2e-3; decoder: 1e-3")
    parser.add_argument("--warmup-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--caption-dropout", type=float, default=0.0,
                        help="transformer: probability of the empty caption (classifier-free guidance)")  # fmt: skip
    parser.add_argument("--decoder-hidden", type=int, default=None,
                        help="decoder: a new decoder of this width instead of fine-tuning the base's")  # fmt: skip
    parser.add_argument("--preset", default="dalle_tiny", choices=["dalle_tiny", "dalle_small"],
                        help="transformer: the model a run from scratch builds")  # fmt: skip
    parser.add_argument("--train-size", type=int, default=TRAIN_SIZE,
                        help="transformer: training images (the first 20 000 are the reranker's pairs)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64, help="transformer: sequences per step")
    parser.add_argument("--device", default="cpu", help="transformer, evaluate: cpu or cuda")
    parser.add_argument("--force", action="store_true",
                        help="transformer, decoder: register even without improvement")  # fmt: skip
    args = parser.parse_args(argv)
    if args.max_minutes is not None and args.max_minutes <= 0:
        parser.error(f"--max-minutes must be positive, got {args.max_minutes}")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device} needs a GPU, and torch sees none here: use --device cpu")
    if not 0 < args.batch_size <= args.train_size:
        parser.error(f"--batch-size must be between 1 and --train-size ({args.train_size}), got {args.batch_size}")
    command = " ".join(["python -m vitcourse.scripts.train_dalle", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.stage == "dvae":
        train_dvae(args.epochs or 8)
    elif args.stage == "decoder":
        train_decoder(args.max_minutes or 30.0, init_from=args.init_from or "dvae_world", epochs=args.epochs or 1000,
                      lr=args.lr or 1e-3, seed=args.seed, force=args.force, decoder_hidden=args.decoder_hidden,
                      command=command)  # fmt: skip
    elif args.stage == "colors":
        train_colors(args.epochs or 15)
    elif args.stage == "reranker":
        train_reranker(args.steps or RERANKER_STEPS, seed=args.seed, command=command)
    elif args.stage == "transformer":
        train_transformer(args.epochs or 5, lr=args.lr or 2e-3, seed=args.seed, init_from=args.init_from,
                          max_minutes=args.max_minutes, warmup_steps=args.warmup_steps,
                          caption_dropout=args.caption_dropout, force=args.force, preset=args.preset,
                          train_size=args.train_size, batch_size=args.batch_size, device=args.device,
                          command=command)  # fmt: skip
    else:
        evaluate_generations(temperature=args.temperature, top_k=args.top_k, samples=args.samples,
                             guidance_scales=args.guidance_scales, best_of_n=args.best_of,
                             root=args.results_root, device=args.device, command=command)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
