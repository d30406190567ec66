"""``python -m vitcourse.hub``: the pinned Hub models and data sets, and their commit hashes (needs the network).

    python -m vitcourse.hub list        # the tables, offline
    python -m vitcourse.hub revisions   # full hash of each pinned revision and of today's main

``revisions`` prints, for each model and data set, the full 40-character commit of its pinned
revision (a short or full hash, or the ``"main"`` placeholder) and the commit ``main`` points to
now, then the lines to paste into :data:`vitcourse.hub.pretrained.HUB_MODELS` and
:data:`vitcourse.data.remote.DATASET_REVISIONS`. A pin the Hub doesn't know fails here, loudly.
"""

from __future__ import annotations

import argparse

from ..data.remote import DATASET_PLACEHOLDERS, DATASET_REVISIONS
from .pretrained import HUB_MODELS


def list_models() -> None:
    """Print the tables of pinned models and data sets."""
    print(f"{'hub id':42}{'revision':42}{'tasks'}")
    for entry in HUB_MODELS.values():
        pin = entry.revision if entry.pinned else f"{entry.revision} (placeholder)"
        print(f"{entry.hub_id:42}{pin:42}{', '.join(entry.classes)}")
    print(f"\n{'data set':42}{'revision'}")
    for name, revision in DATASET_REVISIONS.items():
        print(f"{name:42}{revision}{' (placeholder)' if name in DATASET_PLACEHOLDERS else ''}")


def resolve_revisions() -> dict[str, dict[str, str]]:
    """Ask the Hub for the full hash of every pinned revision and of ``main``, models then data sets.

    Returns:
        hub id (``"datasets/<id>"`` for a data set) → ``{"pinned": revision, "pinned_sha": full hash,
        "main_sha": full hash}``.
    """
    from huggingface_hub import HfApi

    api, found = HfApi(), {}
    for entry in HUB_MODELS.values():
        pinned = api.model_info(entry.hub_id, revision=entry.revision).sha
        latest = api.model_info(entry.hub_id).sha
        found[entry.hub_id] = {"pinned": entry.revision, "pinned_sha": pinned, "main_sha": latest}
        print(f"{entry.hub_id:42} pinned {entry.revision:8} = {pinned}   main = {latest}", flush=True)
    print("\n# revisions to paste into HUB_MODELS (placeholders replaced by today's main):")
    for hub_id, shas in found.items():
        print(f'#   "{hub_id}": "{shas["pinned_sha"]}"')
    datasets = {}
    for name, revision in DATASET_REVISIONS.items():
        pinned = api.dataset_info(name, revision=revision).sha
        latest = api.dataset_info(name).sha
        datasets[name] = {"pinned": revision, "pinned_sha": pinned, "main_sha": latest}
        print(f"data set {name:33} pinned {revision[:8]:8} = {pinned}   main = {latest}", flush=True)
    print("\n# revisions to paste into DATASET_REVISIONS:")
    for name, shas in datasets.items():
        print(f'#   "{name}": "{shas["pinned_sha"]}"')
    return {**found, **{f"datasets/{name}": shas for name, shas in datasets.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vitcourse.hub", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["list", "revisions"])
    args = parser.parse_args(argv)
    if args.command == "list":
        list_models()
    else:
        resolve_revisions()


if __name__ == "__main__":
    main()
