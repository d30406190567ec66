"""The project's code, one folder per stage of the pipeline (Cookiecutter Data Science).

* :mod:`src.data.make_dataset`: ``make data``, the raw images into ``data/processed``;
* :mod:`src.features.build_features`: normalisation and augmentation, the data loaders;
* :mod:`src.models.train_model`: ``make train``, the model from ``configs/config.yaml``;
* :mod:`src.models.predict_model`: ``make evaluate``, test metrics into ``reports/``;
* :mod:`src.visualization.visualize`: ``make report``, figures into ``reports/figures``.

Every command reads one YAML file (:mod:`src.config`), logs to ``logs/<command>.log``
(:mod:`src.logs`) and fails with one line that says what to do (:mod:`src.command`).
"""
