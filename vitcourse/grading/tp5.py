"""Checks of TP5: auto-labelling, text prompts → boxes → masks → a data set, and its quality.

Parts graded by tests, each against the package's reference on the same inputs
(:mod:`vitcourse.labelling`):

* ``tp5.boxes``: ``select_boxes(outputs, image_size, box_threshold, text_threshold)``:
  a text-prompted detector's raw outputs (boxes ``cx, cy, w, h`` in ``[0, 1]``, phrase
  probabilities) → the named boxes in pixel corners, best first
  (:func:`~vitcourse.labelling.select_boxes`);
* ``tp5.masks``: ``masks_from_boxes(predictor, image, boxes)``: one SAM mask per box
  (:func:`~vitcourse.labelling.masks_from_boxes`, on the shipped ``sam_mini_world``);
* ``tp5.coco``: ``to_coco_dataset(labels, categories, image_sizes)``: a COCO data set
  that ``pycocotools`` loads and evaluates (:func:`~vitcourse.labelling.to_coco`);
* ``tp5.yolo``: ``yolo_lines(rows, image_size, kind)``: YOLO text lines (boxes and
  polygons, normalised) that ``supervision`` reads back
  (:func:`~vitcourse.labelling.yolo_lines`);
* ``tp5.ap50``: ``ap50_per_class(reference, predicted)``: AP at IoU 0.5 per class,
  written by hand, equal to ``pycocotools``'
  (:func:`~vitcourse.labelling.box_ap50_per_class`);
* ``tp5.sweep``: ``threshold_sweep(candidates, reference, box_thresholds,
  text_thresholds)``: precision, recall and AP50 for every pair of thresholds
  (:func:`~vitcourse.labelling.threshold_sweep`);
* ``tp5.operating_point``: the notebook's ``operating_point``: the sweep, the chosen
  thresholds (the highest recall at the least precision the student asks for) and a
  justification that cites the numbers.

The analysis of the errors is a written answer, graded by the instructor.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..labelling import (
    box_ap50_per_class,
    evaluate_labels,
    masks_from_boxes,
    reference_labels,
    select_boxes,
    threshold_sweep,
    to_coco,
    yolo_lines,
)
from ..labelling.steps import SamBoxPredictor, choose_operating_point
from .registry import Assignment, Variable

__all__ = ["TP", "reference_operating_point"]

TP = Assignment("tp5", title="TP5: auto-etiquetado, de un texto a un conjunto de datos COCO/YOLO evaluado")

CLASSES = ["círculo", "cuadrado", "estrella"]


def _to_coco_dataset(labels, categories, image_sizes):
    return to_coco(labels, categories, [tuple(size) for size in image_sizes])


def _ap50_per_class(reference, predicted):
    return box_ap50_per_class(reference, predicted)


# --------------------------------------------------------------------------- part 1: the boxes

boxes = TP.part(
    "boxes",
    title="select_boxes: de las salidas del detector a cajas con nombre, en píxeles",
    points=1.5,
    target="select_boxes",
    reference=select_boxes,
    description="Las salidas crudas de un detector guiado por texto (cajas $c_x, c_y, w, h$ normalizadas y la "
    "probabilidad de cada frase) pasan por los dos umbrales de Grounding DINO y quedan como cajas "
    "$(x_0, y_0, x_1, y_1)$ en píxeles, con su clase y su puntaje, de mayor a menor puntaje.",
)


def _outputs(queries: int = 8, phrases: int = 3) -> dict:
    centres = torch.rand(queries, 2) * 0.6 + 0.2
    sizes = torch.rand(queries, 2) * 0.3 + 0.05
    probs = torch.rand(queries, phrases) * 0.5
    best = torch.randint(0, phrases, (queries,))
    probs[torch.arange(queries), best] = torch.linspace(0.95, 0.05, queries)[torch.randperm(queries)]
    return {"boxes": torch.cat([centres, sizes], -1), "probs": probs}


def _observe_boxes(found: dict) -> dict:
    return {
        "boxes": torch.as_tensor(found["boxes"]).double().reshape(-1, 4),
        "scores": torch.as_tensor(found["scores"]).double().reshape(-1),
        "labels": torch.as_tensor(found["labels"]).long().reshape(-1),
    }


@boxes.test(
    "Cajas en píxeles, como (x0, y0, x1, y1)",
    weight=2,
    rtol=1e-4,
    atol=1e-3,
    hint="El detector da (cx, cy, w, h) entre 0 y 1: x0 = (cx - w/2)·W, y0 = (cy - h/2)·H, x1 = (cx + w/2)·W, "
    "y1 = (cy + h/2)·H. (x, y, w, h) no es el formato pedido.",
)
def pixel_corners(fn):
    return {"boxes": _observe_boxes(fn(_outputs(), (64, 64), 0.0, 0.0))["boxes"]}


@boxes.test(
    "Imagen no cuadrada: x se escala con el ancho, y con el alto",
    rtol=1e-4,
    atol=1e-3,
    hint="image_size es (H, W): multiplicá las x por W y las y por H.",
)
def not_square(fn):
    return {"boxes": _observe_boxes(fn(_outputs(), (48, 80), 0.0, 0.0))["boxes"]}


@boxes.test(
    "Umbral de cajas: quedan las de puntaje ≥ box_threshold, de mayor a menor",
    weight=2,
    rtol=1e-4,
    atol=1e-4,
    hint="El puntaje de una caja es la mayor probabilidad entre las frases (probs.max(-1)); se queda si es "
    ">= box_threshold, y se ordenan de mayor a menor puntaje.",
)
def box_threshold(fn):
    return _observe_boxes(fn(_outputs(10), (64, 64), 0.35, 0.0))


@boxes.test(
    "Umbral de texto: una caja sin frase segura se descarta",
    rtol=1e-4,
    atol=1e-4,
    hint="La clase es la frase de mayor probabilidad; si esa probabilidad no llega a text_threshold la caja no "
    "tiene nombre y un conjunto de datos no la puede usar: se descarta.",
)
def text_threshold(fn):
    return _observe_boxes(fn(_outputs(10), (64, 64), 0.2, 0.5))


@boxes.test(
    "Sin detecciones: tensores vacíos con la forma correcta",
    hint="Con todos los puntajes bajo el umbral devolvé boxes (0, 4), scores (0,) y labels (0,).",
)
def nothing_found(fn):
    found = fn(_outputs(), (64, 64), 0.99, 0.99)
    return {key: list(torch.as_tensor(found[key]).shape) for key in ("boxes", "scores", "labels")}


# --------------------------------------------------------------------------- part 2: the masks

masks = TP.part(
    "masks",
    title="masks_from_boxes: una máscara de SAM por caja",
    points=1,
    target="masks_from_boxes",
    reference=masks_from_boxes,
    description="SAM codifica la imagen una vez y convierte cada caja del detector en una máscara: la esquina "
    "$(x_1, y_1)$ del detector queda un píxel más allá del último, la de SAM es el último píxel.",
)


def _world(count: int = 3):
    from ..models.sam.training import SegmentationData, make_instances

    return make_instances(SegmentationData(seed=1, radius=(0.12, 0.25), rotation=0.0), split=3, size=count)


def _predictor():
    from .. import checkpoints
    from ..models.sam.training import normalize

    return SamBoxPredictor(checkpoints.load("sam_mini_world"), normalize)


def _boxes_of(masks: torch.Tensor) -> torch.Tensor:
    """Detector-style boxes of masks: x1, y1 one past the last pixel."""
    from ..data.world import masks_to_boxes

    return torch.from_numpy(masks_to_boxes(torch.as_tensor(masks).numpy())).reshape(-1, 4)


class _Counting:
    """A predictor that counts the calls."""

    def __init__(self, predictor) -> None:
        self.predictor, self.images, self.calls = predictor, 0, 0

    def set_image(self, image):
        self.images += 1
        return self.predictor.set_image(image)

    def predict_logits(self, boxes, multimask_output=False):
        self.calls += 1
        return self.predictor.predict_logits(boxes, multimask_output=multimask_output)


@masks.test(
    "Una máscara booleana por caja, del tamaño de la imagen",
    hint="predictor.predict_logits(cajas, multimask_output=False) da (K, 1, H, W) logits: quedate con [:, 0] > 0.",
)
def mask_shapes(fn):
    world = _world(1)
    out = torch.as_tensor(fn(_predictor(), world.images[0], _boxes_of(world.masks[0])))
    return {"forma": list(out.shape), "tipo": str(out.dtype)}


@masks.test(
    "Las máscaras son las de SAM con cada caja (esquinas en el último píxel)",
    weight=2,
    hint="Restá 1 a x1 e y1 de cada caja (el detector las da un píxel más allá del último), recortá a la imagen, "
    "pedí una sola máscara por caja (multimask_output=False) y umbralizá los logits en 0.",
)
def same_masks(fn):
    world = _world(3)
    predictor = _predictor()
    return {
        f"imagen {i}": torch.as_tensor(fn(predictor, image, _boxes_of(image_masks))).bool()
        for i, (image, image_masks) in enumerate(zip(world.images, world.masks))
    }


@masks.test(
    "Codifica la imagen una sola vez para todas sus cajas",
    hint="predictor.set_image(image) una vez (es la parte cara), después predict_logits con todas las cajas.",
)
def encodes_once(fn):
    world = _world(1)
    predictor = _Counting(_predictor())
    fn(predictor, world.images[0], _boxes_of(world.masks[0]))
    return {"llamadas a set_image": predictor.images}


@masks.test(
    "Sin cajas, ninguna máscara",
    hint="Con boxes de forma (0, 4) devolvé un tensor booleano (0, H, W) sin llamar a SAM.",
)
def no_boxes(fn):
    world = _world(1)
    out = torch.as_tensor(fn(_predictor(), world.images[0], torch.zeros(0, 4)))
    return {"forma": list(out.shape)}


# --------------------------------------------------------------------------- part 3: COCO


coco = TP.part(
    "coco",
    title="to_coco_dataset: un conjunto de datos COCO que pycocotools carga",
    points=1.5,
    target="to_coco_dataset",
    reference=_to_coco_dataset,
    forbidden=(to_coco,),
    description="Las etiquetas como un JSON de COCO: `images`, `annotations` (con `bbox` $[x, y, w, h]$, máscara "
    "en RLE, `area`, `category_id` desde 1 y `score`) y `categories`.",
)


def _labelled(count: int = 3, jitter: float = 0.0, seed: int = 0):
    """Rows of labels of a few generated images (their reference masks, classes folded to 3), and the sizes."""
    world = _world(count)
    labels = [image_labels % len(CLASSES) for image_labels in world.labels]
    rows = reference_labels(world.masks, labels)
    generator = torch.Generator().manual_seed(seed)
    for image in rows:
        for row in image:
            row["score"] = float(torch.rand(1, generator=generator)) * 0.9 + 0.1
            if jitter:
                row["box"] = [v + jitter * float(torch.randn(1, generator=generator)) for v in row["box"]]
    sizes = [tuple(image.shape[-2:]) for image in world.images]
    return rows, sizes


def _loaded(dataset: dict):
    """``pycocotools.COCO`` reading the data set from a JSON file, as a tool would."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "coco.json"
        path.write_text(json.dumps(dataset), encoding="utf-8")
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))


@coco.test(
    "pycocotools lo carga desde un archivo JSON: imágenes, anotaciones y categorías",
    hint="Un dict con 'images' (id, width, height, file_name), 'annotations' y 'categories' (id, name), con "
    "números de Python (float(...), int(...)) para que json.dumps lo acepte.",
)
def loads(fn):
    rows, sizes = _labelled()
    loaded = _loaded(fn(rows, list(CLASSES), sizes))
    return {
        "imágenes (id, alto, ancho)": sorted((i["id"], i["height"], i["width"]) for i in loaded.dataset["images"]),
        "anotaciones por imagen": [len(loaded.getAnnIds(imgIds=[i])) for i in sorted(loaded.getImgIds())],
        "categorías": [(c["id"], c["name"]) for c in loaded.loadCats(loaded.getCatIds())],
    }


@coco.test(
    "bbox en el formato de COCO: [x, y, ancho, alto]",
    weight=2,
    atol=1e-4,
    hint="COCO guarda la esquina superior izquierda y el tamaño: [x0, y0, x1 - x0, y1 - y0], no (x0, y0, x1, y1).",
)
def bbox_format(fn):
    rows, sizes = _labelled()
    dataset = fn(rows, list(CLASSES), sizes)
    return {"bbox": torch.tensor([a["bbox"] for a in dataset["annotations"]], dtype=torch.float64)}


@coco.test(
    "Máscaras en RLE que pycocotools decodifica igual, con su área",
    hint="pycocotools.mask.encode(np.asfortranarray(mask.numpy().astype(np.uint8))); counts como texto "
    "(.decode('ascii')) para el JSON; area = píxeles de la máscara.",
)
def rle_masks(fn):
    rows, sizes = _labelled()
    loaded = _loaded(fn(rows, list(CLASSES), sizes))
    annotations = loaded.loadAnns(sorted(loaded.getAnnIds()))
    return {
        "máscaras": [torch.from_numpy(loaded.annToMask(a).astype(bool)) for a in annotations],
        "area": [float(a["area"]) for a in annotations],
        "segmentation en RLE": [isinstance(a["segmentation"], dict) and "counts" in a["segmentation"]
                                for a in annotations],
    }  # fmt: skip


@coco.test(
    "category_id desde 1, en el orden de la lista de clases; cada anotación con su imagen y su puntaje",
    hint="La clase i (0, 1, 2...) es la categoría i + 1 (COCO reserva el 0); image_id es el id de su imagen.",
)
def categories(fn):
    rows, sizes = _labelled()
    dataset = fn(rows, list(CLASSES), sizes)
    return {
        "(image_id, category_id)": [(a["image_id"], a["category_id"]) for a in dataset["annotations"]],
        "score": [round(float(a["score"]), 6) for a in dataset["annotations"]],
    }


@coco.test(
    "Evaluadas con pycocotools contra las de referencia, las mismas etiquetas dan AP50 = 1",
    weight=2,
    atol=1e-6,
    hint="Si el AP50 de las cajas no es 1, las cajas no están en [x, y, w, h] o la clase no coincide; si el de "
    "las máscaras no es 1, la máscara no está bien codificada.",
)
def evaluates(fn):
    rows, sizes = _labelled()
    quality = evaluate_labels(to_coco(rows, CLASSES, sizes), fn(rows, list(CLASSES), sizes))
    return {"AP50 cajas": quality["box_ap50"], "AP50 máscaras": quality["mask_ap50"]}


# --------------------------------------------------------------------------- part 4: YOLO

yolo = TP.part(
    "yolo",
    title="yolo_lines: las etiquetas en el formato de YOLO (cajas y polígonos)",
    points=1,
    target="yolo_lines",
    reference=yolo_lines,
    description="Una línea por objeto: `clase cx cy w h` (cajas) o `clase x1 y1 x2 y2 ...` (polígonos), con las "
    "coordenadas divididas por el ancho (x) o el alto (y) de la imagen; `supervision` las lee.",
)


def _numbers(lines) -> list:
    return [[float(v) for v in line.split()] for line in lines]


@yolo.test(
    "Cajas: clase cx cy w h, normalizados por el ancho y el alto",
    weight=2,
    atol=1e-5,
    hint="cx = (x0 + x1) / 2 / W, cy = (y0 + y1) / 2 / H, w = (x1 - x0) / W, h = (y1 - y0) / H; la clase "
    "empieza en 0 (no es el category_id de COCO).",
)
def box_lines(fn):
    rows, _ = _labelled(1)
    return {"líneas": _numbers(fn(rows[0], (64, 64), "boxes"))}


@yolo.test(
    "Imagen no cuadrada: x sobre el ancho, y sobre el alto",
    atol=1e-5,
    hint="image_size es (H, W).",
)
def not_square_lines(fn):
    rows = [{"label": 1, "score": 0.9, "box": [10.0, 4.0, 30.0, 20.0], "mask": None}]
    return {"líneas": _numbers(fn(rows, (40, 100), "boxes"))}


def _all_normalised(lines) -> bool:
    return all(0.0 <= v <= 1.0 for line in _numbers(lines) for v in line[1:])


@yolo.test(
    "Todas las coordenadas entre 0 y 1",
    hint="YOLO no guarda píxeles: dividí cada x por el ancho y cada y por el alto de la imagen.",
)
def normalised(fn):
    rows, _ = _labelled(1)
    return {
        "cajas normalizadas": _all_normalised(fn(rows[0], (64, 64), "boxes")),
        "polígonos normalizados": _all_normalised(fn(rows[0], (64, 64), "polygons")),
    }


def _read_back(lines: list[str], size: tuple[int, int], masks: bool):
    """What ``supervision.DetectionDataset.from_yolo`` reads from one image's lines."""
    import supervision as sv
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "images").mkdir()
        (folder / "labels").mkdir()
        Image.fromarray(np.zeros((*size, 3), dtype=np.uint8)).save(folder / "images" / "00000.png")
        (folder / "labels" / "00000.txt").write_text("\n".join(lines) + "\n")
        names = "\n".join(f"  - {name}" for name in CLASSES)
        (folder / "data.yaml").write_text(f"nc: {len(CLASSES)}\nnames:\n{names}\n", encoding="utf-8")
        dataset = sv.DetectionDataset.from_yolo(
            images_directory_path=str(folder / "images"),
            annotations_directory_path=str(folder / "labels"),
            data_yaml_path=str(folder / "data.yaml"),
            force_masks=masks,
        )
        (path,) = dataset.image_paths
        return dataset.annotations[path]


@yolo.test(
    "supervision lee las cajas: las mismas, en píxeles",
    atol=1e-2,
    hint="Si supervision lee cajas gigantes, las coordenadas no están normalizadas; si corridas, no son el "
    "centro de la caja.",
)
def supervision_boxes(fn):
    rows, _ = _labelled(1)
    read = _read_back(fn(rows[0], (64, 64), "boxes"), (64, 64), masks=False)
    return {"clases": [int(c) for c in read.class_id], "cajas": torch.from_numpy(read.xyxy.astype(np.float64))}


@yolo.test(
    "supervision lee los polígonos: máscaras como las originales",
    weight=2,
    atol=0.03,
    hint="El polígono de cada máscara: supervision.mask_to_polygons(mask.numpy()) da sus contornos en píxeles "
    "(x, y); tomá el de más vértices, dividí x por W e y por H y escribí clase x1 y1 x2 y2 ...",
)
def supervision_polygons(fn):
    rows, _ = _labelled(1)
    read = _read_back(fn(rows[0], (64, 64), "polygons"), (64, 64), masks=True)
    ious = []
    for row, mask in zip(rows[0], read.mask):
        original = row["mask"].numpy()
        ious.append(round(float((original & mask).sum() / max((original | mask).sum(), 1)), 2))
    return {"clases": [int(c) for c in read.class_id], "IoU con la máscara original": ious}


# --------------------------------------------------------------------------- part 5: AP50 per class

ap50 = TP.part(
    "ap50",
    title="ap50_per_class: AP a IoU 0.5 por clase, escrito a mano",
    points=1.5,
    target="ap50_per_class",
    reference=_ap50_per_class,
    forbidden=(box_ap50_per_class, evaluate_labels),
    description="El AP50 de COCO de las cajas, clase por clase, sin `pycocotools`: emparejar por imagen de mayor "
    "a menor puntaje con IoU ≥ 0.5, la curva de precisión y exhaustividad, su envolvente y el promedio en 101 "
    "puntos.",
)


def _observe_ap(out: dict) -> dict:
    return {str(name): float(value) for name, value in sorted(out.items())}


def _coco_of(rows, sizes):
    return to_coco(rows, CLASSES, sizes)


@ap50.test(
    "Predicciones perfectas: AP50 = 1 en cada clase",
    atol=1e-6,
    hint="Cada predicción con IoU ≥ 0.5 contra una referencia libre de su clase e imagen es un verdadero positivo.",
)
def perfect(fn):
    rows, sizes = _labelled()
    reference = _coco_of(rows, sizes)
    return _observe_ap(fn(reference, _coco_of(rows, sizes)))


def _two_boxes() -> tuple[dict, dict]:
    """One class, two reference boxes; a false positive scored above two hits."""
    reference = {
        "images": [{"id": 1, "width": 64, "height": 64}],
        "categories": [{"id": 1, "name": "círculo"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2.0, 2.0, 10.0, 10.0], "area": 100.0, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30.0, 30.0, 12.0, 8.0], "area": 96.0, "iscrowd": 0},
        ],
    }
    predicted = {**reference, "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [40.0, 2.0, 10.0, 10.0], "score": 0.9, "area": 100.0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [3.0, 2.0, 10.0, 10.0], "score": 0.8, "area": 100.0},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [30.0, 31.0, 12.0, 8.0], "score": 0.7, "area": 96.0},
    ]}  # fmt: skip
    return reference, predicted


@ap50.test(
    "Un falso positivo con más puntaje que los verdaderos positivos baja el AP (envolvente y 101 puntos)",
    weight=2,
    atol=1e-6,
    hint="Ordená por puntaje: precisión 0/1, 1/2, 2/3 con exhaustividad 0, 1/2, 1. La envolvente toma en cada "
    "punto la mejor precisión a exhaustividad mayor o igual (2/3 en todos), promediada en 0, 0.01, ..., 1.",
)
def false_positive_first(fn):
    return _observe_ap(fn(*_two_boxes()))


@ap50.test(
    "Coincide con pycocotools en cajas movidas al azar, con puntajes al azar",
    weight=3,
    atol=1e-6,
    hint="Por imagen y clase, de mayor a menor puntaje, cada predicción toma la referencia libre de mayor IoU "
    "(si es ≥ 0.5; una referencia ya tomada no cuenta dos veces); las predicciones de todas las imágenes se juntan y se ordenan por puntaje para la curva; "
    "la precisión en 101 exhaustividades usa la envolvente (0 donde no se alcanza).",
)
def random_like_coco(fn):
    rows, sizes = _labelled(6, jitter=3.0, seed=1)
    reference_rows, _ = _labelled(6)
    extra = [{"label": 0, "score": 0.95, "box": [1.0, 1.0, 20.0, 20.0], "mask": None}]
    rows[0] = rows[0] + extra  # a confident false positive
    rows[1] = rows[1][1:]  # a missed object
    for row in rows[2]:  # wrong classes
        row["label"] = (row["label"] + 1) % len(CLASSES)
    for image in rows[3:5]:  # duplicates: a second, weaker box on an object already found
        image.append({**image[0], "score": image[0]["score"] / 2})
    return _observe_ap(fn(_coco_of(reference_rows, sizes), _coco_of(rows, sizes)))


@ap50.test(
    "Clase sin referencias: NaN; clase con referencias y sin predicciones: 0",
    hint="Una clase que no aparece en la referencia no tiene AP (float('nan')), y no debe contar en el promedio; "
    "una que aparece pero no se predijo nunca tiene AP 0.",
)
def empty_classes(fn):
    reference, predicted = _two_boxes()
    reference = {**reference, "categories": [*reference["categories"], {"id": 2, "name": "estrella"},
                                              {"id": 3, "name": "cruz"}]}  # fmt: skip
    reference["annotations"] = [
        *reference["annotations"],
        {"id": 3, "image_id": 1, "category_id": 2, "bbox": [50.0, 50.0, 6.0, 6.0], "area": 36.0, "iscrowd": 0},
    ]
    predicted = {**predicted, "categories": reference["categories"]}
    out = fn(reference, predicted)
    return {"estrella": float(out["estrella"]), "cruz es NaN": math.isnan(float(out["cruz"]))}


# --------------------------------------------------------------------------- part 6: the sweep

sweep = TP.part(
    "sweep",
    title="threshold_sweep: precisión, exhaustividad y AP50 para cada par de umbrales",
    points=1,
    target="threshold_sweep",
    reference=threshold_sweep,
    description="Con las cajas encontradas una vez a umbrales bajos, cada par (umbral de cajas, umbral de texto) "
    "se queda con las que lo superan y se evalúa contra las etiquetas de referencia.",
)

BOX_GRID, TEXT_GRID = (0.2, 0.5, 0.8), (0.3, 0.6)


def _sweep_rows(out) -> list:
    rows = list(out.to_dict("records") if hasattr(out, "to_dict") else out)
    keys = ("box_threshold", "text_threshold", "predicted", "precision", "recall", "ap50")
    return [{key: float(row[key]) for key in keys if key in row} for row in rows]


def _sweep_inputs():
    rows, sizes = _labelled(5, jitter=2.0, seed=2)
    reference_rows, _ = _labelled(5)
    rows[0] = [*rows[0], {"label": 2, "score": 0.55, "box": [1.0, 1.0, 15.0, 15.0], "mask": None}]
    return rows, to_coco(reference_rows, CLASSES, sizes)


@sweep.test(
    "Una fila por par de umbrales (el de cajas por fuera), con la cantidad de cajas que quedan",
    hint="for box_threshold in box_thresholds: for text_threshold in text_thresholds: una caja queda si su score "
    "es >= box_threshold y >= text_threshold (sin frase segura no tiene clase).",
)
def grid(fn):
    candidates, reference = _sweep_inputs()
    rows = _sweep_rows(fn(candidates, reference, list(BOX_GRID), list(TEXT_GRID)))
    return {"filas": [{k: row.get(k) for k in ("box_threshold", "text_threshold", "predicted")} for row in rows]}


@sweep.test(
    "Precisión y exhaustividad como las de referencia",
    weight=2,
    atol=1e-6,
    hint="Verdaderos positivos (VP): cajas emparejadas (IoU ≥ 0.5, misma clase e imagen, de mayor a menor puntaje, una referencia "
    "por caja); precisión = VP / cajas que quedan, exhaustividad = VP / cajas de referencia.",
)
def precision_recall(fn):
    candidates, reference = _sweep_inputs()
    rows = _sweep_rows(fn(candidates, reference, list(BOX_GRID), list(TEXT_GRID)))
    return {"filas": [{k: row.get(k) for k in ("precision", "recall")} for row in rows]}


@sweep.test(
    "AP50 medio sobre las clases de la referencia",
    atol=1e-6,
    hint="ap50 = promedio de ap50_per_class(referencia, predicciones que quedan) sin las clases NaN.",
)
def mean_ap(fn):
    candidates, reference = _sweep_inputs()
    rows = _sweep_rows(fn(candidates, reference, list(BOX_GRID), list(TEXT_GRID)))
    return {"ap50": [row.get("ap50") for row in rows]}


# --------------------------------------------------------------------------- part 7: the operating point

KEYS = ("sweep", "min_precision", "box_threshold", "text_threshold", "precision", "recall", "ap50", "justification")


def reference_operating_point() -> dict:
    """A correct ``operating_point`` on a made-up sweep: recall falls and precision rises with the thresholds."""
    table = []
    for box in (0.1, 0.3, 0.5, 0.7):
        for text in (0.25, 0.4):
            level = max(box, text)
            table.append({
                "box_threshold": box, "text_threshold": text, "predicted": int(80 - 60 * level),
                "precision": round(0.75 + 0.3 * level, 4), "recall": round(0.99 - 0.4 * level**2, 4),
                "ap50": round(0.97 - 0.35 * level**2, 4),
            })  # fmt: skip
    chosen = choose_operating_point(table, 0.9)
    justification = (
        f"Pido precisión de al menos 0.90: con umbral de cajas {chosen['box_threshold']} y de texto "
        f"{chosen['text_threshold']} la precisión es {chosen['precision']:.2f} y la exhaustividad "
        f"{chosen['recall']:.2f}, la mayor entre los pares que llegan a 0.90."
    )
    return {"sweep": table, "min_precision": 0.9, **{k: chosen[k] for k in
            ("box_threshold", "text_threshold", "precision", "recall", "ap50")}, "justification": justification}  # fmt: skip


operating_point = TP.part(
    "operating_point",
    title="operating_point: los umbrales elegidos, justificados con los números del barrido",
    points=1.5,
    target=Variable("operating_point"),
    reference=reference_operating_point,
    description="Un punto de operación que sale del barrido: la mayor exhaustividad entre los pares de umbrales "
    "que alcanzan la precisión mínima que elegiste, con una justificación que cita sus números.",
)


def _point(value) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"operating_point debe ser un diccionario con las claves {list(KEYS)}, no "
                        f"{type(value).__name__}")  # fmt: skip
    return value


def _table(value) -> list[dict]:
    return _sweep_rows(_point(value)["sweep"])


@operating_point.test(
    "Tiene el barrido, la precisión mínima, los umbrales, sus métricas y la justificación",
    hint="operating_point = {'sweep': filas del barrido, 'min_precision': ..., 'box_threshold': ..., "
    "'text_threshold': ..., 'precision': ..., 'recall': ..., 'ap50': ..., 'justification': '...'}",
)
def has_keys(value):
    value = _point(value)
    table = _table(value)
    return {
        "claves que faltan": [k for k in KEYS if k not in value],
        "al menos 3 umbrales de cajas": len({r["box_threshold"] for r in table}) >= 3,
        "al menos 2 umbrales de texto": len({r["text_threshold"] for r in table}) >= 2,
    }


def _row_of(value) -> dict | None:
    for row in _table(value):
        if math.isclose(row["box_threshold"], float(value["box_threshold"]), abs_tol=1e-9) and math.isclose(
            row["text_threshold"], float(value["text_threshold"]), abs_tol=1e-9
        ):
            return row
    return None


@operating_point.test(
    "Los umbrales elegidos son una fila del barrido, con sus mismos números",
    hint="Copiá precision, recall y ap50 de la fila del barrido con esos umbrales.",
)
def is_a_row(value):
    value = _point(value)
    row = _row_of(value)
    if row is None:
        return {"la fila existe en el barrido": False}
    same = all(math.isclose(float(value[k]), row[k], abs_tol=1e-6) for k in ("precision", "recall", "ap50"))
    return {"la fila existe en el barrido": True, "sus métricas son las de la fila": same}


@operating_point.test(
    "Es el de mayor exhaustividad entre los que alcanzan la precisión mínima",
    weight=2,
    hint="Filtrá las filas con precision >= min_precision y elegí la de mayor recall (a igual recall, la de "
    "mayor ap50): que lo decidan los números, no la vista.",
)
def best_recall(value):
    value = _point(value)
    table, row = _table(value), _row_of(value)
    eligible = [r for r in table if r["precision"] >= float(value["min_precision"])]
    if not eligible:
        return {"alguna fila alcanza la precisión mínima": False}
    best = max(r["recall"] for r in eligible)
    return {
        "alguna fila alcanza la precisión mínima": True,
        "la elegida alcanza la precisión mínima": row is not None and row["precision"] >= float(value["min_precision"]),
        "su exhaustividad es la mayor de esas": row is not None and math.isclose(row["recall"], best, abs_tol=1e-9),
    }


@operating_point.test(
    "La justificación cita la precisión y la exhaustividad elegidas (con dos decimales)",
    hint="Escribila con f-strings a partir de los números: f'... precisión {precision:.2f}, exhaustividad "
    "{recall:.2f} ...', así cambia si cambian los datos.",
)
def cites_numbers(value):
    value = _point(value)
    text = str(value.get("justification", ""))
    return {
        "cita la precisión": f"{float(value['precision']):.2f}" in text,
        "cita la exhaustividad": f"{float(value['recall']):.2f}" in text,
    }


TP.part(
    "analysis",
    title="Análisis: qué etiqueta mal el flujo y qué revisaría una persona",
    points=1,
    manual=True,
    description="Qué clases tienen menor AP50 y por qué (mirando las máscaras y las cajas), qué hace el umbral "
    "de texto con este detector, y qué pasos del flujo revisaría una persona antes de entrenar con estas etiquetas.",
)
