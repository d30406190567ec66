"""vitcourse: the companion package of the CEIA-ViT course (FIUBA).

The book's chapters import it; every layer and model is written to be read next to
the chapter that explains it.

* :mod:`vitcourse.layers`: patches, positional encodings, attention, MLP, blocks, windows.
* :mod:`vitcourse.models`: ViT, DeiT, Swin, a hybrid and a small ResNet, by name (``create_model``).
* :mod:`vitcourse.complexity`: the cost of attention, as the slides count it.
* :mod:`vitcourse.viz`: the book's figures.
* :mod:`vitcourse.data`: the generated image world, digits, bundled photos, augmentation,
  and loaders for downloaded data sets.
* :mod:`vitcourse.train`: the training loop, metrics, checkpoints, logging, MLflow.
* :mod:`vitcourse.checkpoints`: small trained checkpoints shipped with the package.
* :mod:`vitcourse.hub`: Hub models at pinned revisions (offline stand-ins), and our ViT/Swin
  converted to and from Hugging Face and timm, proven equal layer by layer.
* :mod:`vitcourse.runtime`: profiles (``smoke``/``full``), device, seeds.
"""

__version__ = "0.1.0"
