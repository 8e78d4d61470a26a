"""What runs the maths of ``tinyvae.core``, and nothing of the maths itself:

* data and files: ``idx.py`` (the MNIST file format), ``download.py``, ``data.py`` (data sets
  and minibatches), ``files.py`` (writing a file atomically);
* the training run: ``config.py`` (the recipe), ``training.py`` (the loop),
  ``evaluation.py`` (the measurements), ``run_folder.py``, ``checkpoint.py``;
* pictures: ``plots.py``; latent walks as animations: ``walk.py``;
* the models that ship in the package: ``pretrained.py``, their files in ``weights/``;
* the command lines: ``cli.py`` (parsers, one-line errors, Ctrl-C).
"""
