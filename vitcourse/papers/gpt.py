"""GPT-1, GPT-2 and GPT-3 as their papers (and the course's slides) report them.

Tables are lists of dicts, ready for ``pandas.DataFrame``; each has a :class:`Source`.
Model sizes are given both as printed and as numbers (``n_params``) so that code can
compare them with the parameter counts of :mod:`vitcourse.models.gpt`.

Where the slide and the paper differ, the paper's text is kept and the difference is
noted. One known misprint is kept as printed, because the book finds it with code:
GPT-3 13B's ``d_model`` is printed as 5140 in Table 2.1 of the paper (and on the slide),
while its 40 heads of 128 dimensions make 5120. GPT-3 XL's row (24 heads of 128 for a
``d_model`` of 2048) does not multiply out either.
"""

from __future__ import annotations

from . import Source

__all__ = [
    "GPT1_FINETUNING",
    "GPT1_FINETUNING_SOURCE",
    "GPT1_PRETRAINING",
    "GPT1_PRETRAINING_SOURCE",
    "GPT1_VS_GPT2",
    "GPT1_VS_GPT2_SOURCE",
    "GPT2_MODELS",
    "GPT2_MODELS_SOURCE",
    "GPT3_COST",
    "GPT3_DATA",
    "GPT3_DATA_SOURCE",
    "GPT3_MODELS",
    "GPT3_MODELS_SOURCE",
    "GPT3_PRESETS",
]

GPT1_PRETRAINING_SOURCE = Source(
    "Radford et al.", 2018, "Improving Language Understanding by Generative Pre-Training",
    "Section 4.1, Model specifications (the course's slide: GPT Unsupervised Pre-training)",
    bibkey="radford2018gpt",
)
#: The slide's table of GPT-1's pretraining (characteristic, details), as on the slide.
GPT1_PRETRAINING = [
    {"característica": "Arquitectura", "detalle": "12 capas de decodificador Transformer"},
    {"característica": "Dimensiones", "detalle": "768 de incrustación, 12 cabezas de atención, 3072 en el MLP"},
    {"característica": "Entrenamiento", "detalle": "Adam, tasa máxima 2.5e-4, 100 épocas"},
    {"característica": "Lote", "detalle": "64 secuencias de 512 tokens"},
    {"característica": "Dropout", "detalle": "0.1 (incrustaciones)"},
    {"característica": "Regularización", "detalle": "L2 (peso 0.01), dropout (p = 0.1)"},
    {"característica": "Activación", "detalle": "GELU"},
    {"característica": "Tokenizador", "detalle": "BPE con 40 000 fusiones"},
    {"característica": "Corpus", "detalle": "BooksCorpus"},
]
#: The same as numbers, for code.
GPT1_PRETRAINING_VALUES = {
    "depth": 12, "embed_dim": 768, "num_heads": 12, "mlp_hidden": 3072, "lr_max": 2.5e-4, "epochs": 100,
    "batch_size": 64, "seq_len": 512, "dropout": 0.1, "weight_decay": 0.01, "bpe_merges": 40_000,
    "warmup_steps": 2000,
}

GPT1_FINETUNING_SOURCE = Source(
    "Radford et al.", 2018, "Improving Language Understanding by Generative Pre-Training",
    "Section 4.1, Fine-tuning details (the course's slide: GPT Supervised Fine-Tuning)",
    bibkey="radford2018gpt",
)
#: The slide's fine-tuning table, plus the paper's λ of the auxiliary objective.
GPT1_FINETUNING = [
    {"característica": "Entrenamiento", "detalle": "Adam, tasa máxima 6.25e-5, 3 épocas"},
    {"característica": "Lote", "detalle": "32"},
    {"característica": "Dropout", "detalle": "0.1 en el clasificador"},
    {"característica": "Calendario", "detalle": "calentamiento lineal en el 0.2\u202f% del entrenamiento, luego decae"},
    {"característica": "Objetivo auxiliar", "detalle": "L3 = L2 + λ·L1 con λ = 0.5"},
]
GPT1_FINETUNING_VALUES = {"lr_max": 6.25e-5, "epochs": 3, "batch_size": 32, "dropout": 0.1, "lambda": 0.5}

GPT1_VS_GPT2_SOURCE = Source(
    "Radford et al.", 2019, "Language Models are Unsupervised Multitask Learners",
    "the course's slide comparing GPT-1 and GPT-2 (the paper's Section 2.1 gives WebText as 40 GB)",
    bibkey="radford2019gpt2",
)
#: The slide's comparison, as printed there ("billones" is the slide's word for 10⁹).
GPT1_VS_GPT2 = [
    {"característica": "Parámetros", "GPT-1": "110 millones", "GPT-2": "hasta 1.5 billones (1.5 × 10⁹)"},
    {"característica": "Dimensión oculta", "GPT-1": "768", "GPT-2": "1024 (modelos grandes)"},
    {"característica": "Cabezas de atención", "GPT-1": "12", "GPT-2": "16"},
    {"característica": "Datos", "GPT-1": "BooksCorpus (5 GB)", "GPT-2": "WebText (45 GB)"},
    {"característica": "Contexto", "GPT-1": "512 tokens", "GPT-2": "1024 tokens"},
    {"característica": "Zero-shot", "GPT-1": "No", "GPT-2": "Sí"},
]

GPT2_MODELS_SOURCE = Source(
    "Radford et al.", 2019, "Language Models are Unsupervised Multitask Learners", "Table 2",
    bibkey="radford2019gpt2",
)
#: GPT-2's four sizes as the paper reports them (the chapter compares them with the real counts).
GPT2_MODELS = [
    {"preset": "gpt2", "n_params": 117e6, "printed": "117M", "n_layers": 12, "d_model": 768},
    {"preset": "gpt2_medium", "n_params": 345e6, "printed": "345M", "n_layers": 24, "d_model": 1024},
    {"preset": "gpt2_large", "n_params": 762e6, "printed": "762M", "n_layers": 36, "d_model": 1280},
    {"preset": "gpt2_xl", "n_params": 1542e6, "printed": "1542M", "n_layers": 48, "d_model": 1600},
]

GPT3_MODELS_SOURCE = Source(
    "Brown et al.", 2020, "Language Models are Few-Shot Learners", "Table 2.1 (and the course's slide)",
    arxiv="2005.14165", bibkey="brown2020gpt3",
)
#: Table 2.1: the eight GPT-3 models, as printed (13B's d_model 5140 included).
GPT3_MODELS = [
    {"name": "GPT-3 Small", "n_params": 125e6, "n_layers": 12, "d_model": 768, "n_heads": 12, "d_head": 64,
     "batch_tokens": 0.5e6, "lr": 6.0e-4},
    {"name": "GPT-3 Medium", "n_params": 350e6, "n_layers": 24, "d_model": 1024, "n_heads": 16, "d_head": 64,
     "batch_tokens": 0.5e6, "lr": 3.0e-4},
    {"name": "GPT-3 Large", "n_params": 760e6, "n_layers": 24, "d_model": 1536, "n_heads": 16, "d_head": 96,
     "batch_tokens": 0.5e6, "lr": 2.5e-4},
    {"name": "GPT-3 XL", "n_params": 1.3e9, "n_layers": 24, "d_model": 2048, "n_heads": 24, "d_head": 128,
     "batch_tokens": 1e6, "lr": 2.0e-4},
    {"name": "GPT-3 2.7B", "n_params": 2.7e9, "n_layers": 32, "d_model": 2560, "n_heads": 32, "d_head": 80,
     "batch_tokens": 1e6, "lr": 1.6e-4},
    {"name": "GPT-3 6.7B", "n_params": 6.7e9, "n_layers": 32, "d_model": 4096, "n_heads": 32, "d_head": 128,
     "batch_tokens": 2e6, "lr": 1.2e-4},
    {"name": "GPT-3 13B", "n_params": 13.0e9, "n_layers": 40, "d_model": 5140, "n_heads": 40, "d_head": 128,
     "batch_tokens": 2e6, "lr": 1.0e-4},
    {"name": "GPT-3 175B", "n_params": 175.0e9, "n_layers": 96, "d_model": 12288, "n_heads": 96, "d_head": 128,
     "batch_tokens": 3.2e6, "lr": 0.6e-4},
]
#: Our registry's preset for each row of :data:`GPT3_MODELS`, in order.
GPT3_PRESETS = ["gpt3_small", "gpt3_medium", "gpt3_large", "gpt3_xl", "gpt3_2_7b", "gpt3_6_7b", "gpt3_13b",
                "gpt3_175b"]

GPT3_DATA_SOURCE = Source(
    "Brown et al.", 2020, "Language Models are Few-Shot Learners", "Table 2.2 (the slide shows its first row)",
    arxiv="2005.14165", bibkey="brown2020gpt3",
)
#: Table 2.2: the training mix (tokens in billions, weight in the mix, epochs over 300 B tokens).
GPT3_DATA = [
    {"dataset": "Common Crawl (filtered)", "tokens_billions": 410, "weight": 0.60, "epochs": 0.44},
    {"dataset": "WebText2", "tokens_billions": 19, "weight": 0.22, "epochs": 2.9},
    {"dataset": "Books1", "tokens_billions": 12, "weight": 0.08, "epochs": 1.9},
    {"dataset": "Books2", "tokens_billions": 55, "weight": 0.08, "epochs": 0.43},
    {"dataset": "Wikipedia", "tokens_billions": 3, "weight": 0.03, "epochs": 3.4},
]

#: The slide's estimate of GPT-3's training cost (Lambda Labs' blog), in US dollars.
GPT3_COST = {"usd": 4.6e6, "source": Source("Lambda Labs", 2020, "OpenAI's GPT-3 Language Model: A Technical "
                                            "Overview", "cost estimate (quoted on the course's slide)",
                                            bibkey="lambdalabs2020gpt3")}
