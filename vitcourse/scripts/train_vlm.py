"""Train chapter 5's tiny VLM and its text-only baseline on the generated world's
questions in Spanish, and ship both (``vlm_world_tiny``, ``vlm_world_textonly``).

    OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.train_vlm

The image tower is the shipped mini-CLIP's (``clip_world_tiny``), frozen: its output
tokens are computed once. The projector and the GPT learn to answer
(:mod:`vitcourse.vlm_world`): cross-entropy of the answer token at the question's last
position, AdamW, cosine decay. The baseline is the same GPT without image tokens.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from ..clip_world import preprocess
from ..models import create_model
from ..ocr.results import git_commit, provenance
from ..runtime import seed_everything
from ..vlm_world import QA_WORLD, QATokenizer, accuracy_by_kind, make_qa, predict

__all__ = ["main", "train"]

MODEL = "vlm_world_tiny"


def train(
    use_image: bool,
    steps: int = 600,
    batch_size: int = 128,
    lr: float = 2e-3,
    train_images: int = 6000,
    seed: int = 0,
) -> tuple[torch.nn.Module, dict, dict]:
    """Train one model; returns it, its config overrides and a record (history)."""
    from .. import checkpoints

    seed_everything(seed)
    tokenizer = QATokenizer()
    clip = checkpoints.load("clip_world_tiny")
    cc = clip.config
    overrides = {
        "img_size": cc.img_size,
        "patch_size": cc.patch_size,
        "vision_width": cc.vision_width,
        "vision_depth": cc.vision_depth,
        "vision_heads": cc.vision_heads,
        "vision_mlp_ratio": cc.mlp_ratio,
        "vocab_size": len(tokenizer),
        "use_image": use_image,
    }
    model = create_model(MODEL, **overrides)
    qa = make_qa(train_images, seed, 0)
    features = None
    if use_image:
        model.visual.load_state_dict(clip.visual.state_dict())
        model.visual.eval()
        features = torch.cat(
            [model.image_features(preprocess(qa.images[i : i + 512])) for i in range(0, len(qa.images), 512)]
        )
    ids, last = tokenizer(qa.questions)
    answers = tokenizer.answer_ids(qa.answers)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    history = {"step": [], "loss": []}
    running = []
    model.train()
    if use_image:
        model.visual.eval()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        batch = torch.randint(0, len(ids), (batch_size,), generator=g)
        feats = None if features is None else features[qa.image_index[batch]]
        logits = model(ids[batch], image_features=feats)  # (B, L, V)
        loss = F.cross_entropy(logits[torch.arange(batch_size), last[batch]], answers[batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(loss.item())
        if (step + 1) % 100 == 0:
            history["step"].append(step + 1)
            history["loss"].append(round(sum(running) / len(running), 4))
            running = []
            print(f"{'image' if use_image else 'text-only'} step {step + 1}: loss {history['loss'][-1]:.3f}", flush=True)
    model.eval()
    record = {
        "history": history,
        "data": {
            "name": "generated world, Spanish questions (vitcourse.vlm_world.make_qa)",
            "img_size": list(QA_WORLD.img_size),
            "shapes_per_image": [QA_WORLD.min_shapes, QA_WORLD.max_shapes],
            "train_images": train_images,
            "train_questions": len(qa.questions),
            "seed": seed,
            "split": 0,
            "test": "500 images of split 1, every question",
            "vision_tower": f"clip_world_tiny (sha256 {checkpoints.info('clip_world_tiny')['sha256'][:12]}), frozen",
        },
        "recipe": {"steps": steps, "batch_size": batch_size, "lr": lr, "optimizer": "AdamW, cosine decay"},
    }
    return model, overrides, record


def evaluate(model, seed: int = 0, n_images: int = 500) -> dict[str, float]:
    """Accuracy on every question of ``n_images`` held-out images (split 1)."""
    qa = make_qa(n_images, seed, 1)
    return accuracy_by_kind(qa, predict(model, QATokenizer(), qa))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="checkpoint registry folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from ..checkpoints import register

    commit = git_commit()
    command = "OMP_NUM_THREADS=1 nice -n 10 python -m vitcourse.scripts.train_vlm"
    if args.steps != 600 or args.seed != 0:
        command += f" --steps {args.steps} --seed {args.seed}"
    for name, use_image in (("vlm_world_tiny", True), ("vlm_world_textonly", False)):
        start = time.perf_counter()
        model, overrides, record = train(use_image, args.steps, seed=args.seed)
        metrics = evaluate(model, args.seed)
        print(name, metrics, flush=True)
        register(
            name,
            model,
            MODEL,
            overrides,
            root=args.root,
            description=(
                "tiny VLM: the mini-CLIP's frozen image tower, an MLP projector and a GPT "
                "64x2 answering Spanish questions about world images"
                if use_image
                else "the same GPT without the image: the text-only baseline"
            ),
            data=record["data"],
            recipe=record["recipe"],
            metrics={f"test_{k}": v for k, v in metrics.items()},
            history=record["history"],
            build=command,
            provenance=provenance(command, time.perf_counter() - start, commit, threads=1),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
