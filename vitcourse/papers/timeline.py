"""When the Transformer reached each field: the models this course studies, by date.

Class 1's slide "Evolución de Transformers en NLP y Computer Vision" is a picture of a
timeline. Chapter 1 draws it from this table instead, so every point on it has a source:
each row is one paper, dated by its **first public version**, the month its first arXiv
version was submitted (an arXiv identifier ``YYMM.NNNNN`` names the month the paper was
announced, the same month or the next) or, for the three OpenAI reports that never went
to arXiv, the month of their release.

Each row: ``model`` (its usual name), ``date`` (``"YYYY-MM"``), ``area`` (``"NLP"``,
``"visión"`` or ``"multimodal"``, in Spanish as the figure labels them), ``arxiv``
(or None), ``bibkey`` (the entry in ``book/references.bib``), ``chapter`` (the chapter
of this book that covers it) and ``idea`` (one line, in Spanish, for the figure's
hover text and the table).
"""

from __future__ import annotations

from . import Source

__all__ = ["AREAS", "TIMELINE", "TIMELINE_SOURCE", "row_source"]

#: The lanes of the figure, top to bottom.
AREAS = ("NLP", "visión", "multimodal")

TIMELINE_SOURCE = Source(
    authors="the papers themselves",
    year=2024,
    title="First public versions of the models the course covers",
    where="arXiv submission history (v1) or the report's release",
)

#: One row per model; see the module's docstring for the fields.
TIMELINE: list[dict] = [
    {"model": "Transformer", "date": "2017-06", "area": "NLP", "arxiv": "1706.03762",
     "bibkey": "vaswani2017attention", "chapter": 1,
     "idea": "traducción automática solo con atención, sin recurrencia"},
    {"model": "GPT", "date": "2018-06", "area": "NLP", "arxiv": None,
     "bibkey": "radford2018gpt", "chapter": 4,
     "idea": "decodificador preentrenado prediciendo el próximo token, luego ajuste fino"},
    {"model": "BERT", "date": "2018-10", "area": "NLP", "arxiv": "1810.04805",
     "bibkey": "devlin2019bert", "chapter": None,
     "idea": "codificador bidireccional preentrenado completando palabras tapadas"},
    {"model": "GPT-2", "date": "2019-02", "area": "NLP", "arxiv": None,
     "bibkey": "radford2019gpt2", "chapter": 4,
     "idea": "el mismo objetivo a mayor escala resuelve tareas sin ajuste fino"},
    {"model": "GPT-3", "date": "2020-05", "area": "NLP", "arxiv": "2005.14165",
     "bibkey": "brown2020gpt3", "chapter": 4,
     "idea": "aprendizaje con pocos ejemplos escritos en el prompt"},
    {"model": "DETR", "date": "2020-05", "area": "visión", "arxiv": "2005.12872",
     "bibkey": "carion2020detr", "chapter": 7,
     "idea": "detección de objetos como predicción de un conjunto, sin NMS"},
    {"model": "ImageGPT", "date": "2020-06", "area": "visión", "arxiv": None,
     "bibkey": "chen2020imagegpt", "chapter": 4,
     "idea": "un GPT que completa imágenes píxel por píxel"},
    {"model": "ViT", "date": "2020-10", "area": "visión", "arxiv": "2010.11929",
     "bibkey": "dosovitskiy2021vit", "chapter": 2,
     "idea": "la imagen como secuencia de parches de 16 × 16 píxeles"},
    {"model": "DeiT", "date": "2020-12", "area": "visión", "arxiv": "2012.12877",
     "bibkey": "touvron2021deit", "chapter": 2,
     "idea": "un ViT entrenado solo con ImageNet, destilando una CNN"},
    {"model": "DALL-E", "date": "2021-02", "area": "multimodal", "arxiv": "2102.12092",
     "bibkey": "ramesh2021dalle", "chapter": 4,
     "idea": "imágenes generadas desde texto como una sola secuencia de tokens"},
    {"model": "CLIP", "date": "2021-02", "area": "multimodal", "arxiv": "2103.00020",
     "bibkey": "radford2021clip", "chapter": 5,
     "idea": "imágenes y textos en un mismo espacio, por aprendizaje contrastivo"},
    {"model": "Swin", "date": "2021-03", "area": "visión", "arxiv": "2103.14030",
     "bibkey": "liu2021swin", "chapter": 2,
     "idea": "atención por ventanas desplazadas y una pirámide de resoluciones"},
    {"model": "MAE", "date": "2021-11", "area": "visión", "arxiv": "2111.06377",
     "bibkey": "he2022mae", "chapter": 4,
     "idea": "preentrenamiento reconstruyendo el 75\u202f% de los parches, tapados"},
    {"model": "Donut", "date": "2021-11", "area": "multimodal", "arxiv": "2111.15664",
     "bibkey": "kim2022donut", "chapter": 7,
     "idea": "leer documentos sin OCR: de la imagen al texto estructurado"},
    {"model": "DiT", "date": "2022-12", "area": "visión", "arxiv": "2212.09748",
     "bibkey": "peebles2023dit", "chapter": 5,
     "idea": "un Transformer en lugar de la U-Net de los modelos de difusión"},
    {"model": "Grounding DINO", "date": "2023-03", "area": "multimodal",
     "arxiv": "2303.05499", "bibkey": "liu2024groundingdino", "chapter": 7,
     "idea": "detección de objetos descritos con texto libre"},
    {"model": "SAM", "date": "2023-04", "area": "visión", "arxiv": "2304.02643",
     "bibkey": "kirillov2023sam", "chapter": 6,
     "idea": "segmentar cualquier cosa a partir de puntos, cajas o máscaras"},
    {"model": "RT-DETR", "date": "2023-04", "area": "visión", "arxiv": "2304.08069",
     "bibkey": "zhao2024rtdetr", "chapter": 7,
     "idea": "un DETR en tiempo real con codificador híbrido"},
    {"model": "LLaVA", "date": "2023-04", "area": "multimodal", "arxiv": "2304.08485",
     "bibkey": "liu2023llava", "chapter": 5,
     "idea": "tokens de imagen proyectados dentro de un modelo de lenguaje"},
    {"model": "Nougat", "date": "2023-08", "area": "multimodal", "arxiv": "2308.13418",
     "bibkey": "blecher2023nougat", "chapter": 7,
     "idea": "páginas de artículos científicos a Markdown con LaTeX"},
    {"model": "SD3 (MM-DiT)", "date": "2024-03", "area": "multimodal",
     "arxiv": "2403.03206", "bibkey": "esser2024sd3", "chapter": 5,
     "idea": "difusión con un Transformer que mezcla tokens de texto e imagen"},
    {"model": "SAM 2", "date": "2024-08", "area": "visión", "arxiv": "2408.00714",
     "bibkey": "ravi2024sam2", "chapter": 6,
     "idea": "SAM en video, con una memoria de los cuadros anteriores"},
    {"model": "Pixtral", "date": "2024-10", "area": "multimodal", "arxiv": "2410.07073",
     "bibkey": "agrawal2024pixtral", "chapter": 7,
     "idea": "un modelo de visión y lenguaje con imágenes de cualquier tamaño"},
]  # fmt: skip


def row_source(row: dict) -> str:
    """Where a row's date comes from, for a table column: ``"arXiv:2010.11929 (v1)"``."""
    if row["arxiv"]:
        return f"arXiv:{row['arxiv']} (v1)"
    return "informe técnico de OpenAI"
