"""The maths of the VAE, written by hand. Read it in the order the lessons teach it:

1. ``layers.py``: Linear and the activations, each forward beside its backward (lessons 1-2).
2. ``gradcheck.py``: finite differences, the judge of every gradient here (lesson 2).
3. ``distributions.py``: the likelihoods, the KL and the reparameterization, each beside
   its gradient (lessons 3-5).
4. ``networks.py``: the MLP and convolutional encoders and decoders, one structure for both,
   and the one gate that checks a model's arguments.
5. ``params.py``: every parameter as a view into one flat buffer.
6. ``model.py``: the VAE: the ELBO and IWAE objectives, forward then backward, and the
   backward pass through decoder, reparameterization and encoder (lessons 6 and 11).
   ``hierarchical.py``: the same with two layers of latent variables, z1 below z2: a KL
   that needs a sample, and the backward pass through two reparameterizations (lesson 13).
7. ``optim.py``: SGD and Adam (lessons 6 and 8).
8. ``conv.py``: Conv2d and ConvTranspose2d by im2col and col2im (lesson 10).

Beside them: ``backend.py`` (one array module, ``xp``, for NumPy and CuPy) and ``arrays.py``
(which library an array belongs to); ``initialization.py`` (every layer's first weights);
``validation.py`` (what a model's methods are given). Where speed matters the code calls
``tinyvae/fast/``, which computes the same numbers, and a comment says so. Nothing here
imports from ``tinyvae.tools``.
"""
