"""The maths of the VAE, written by hand. Read it in this order:

1. ``backend.py``: one array module, ``xp``, for NumPy (CPU) and CuPy (GPU).
2. ``layers.py``: Linear and the activations, each forward beside its backward; the MLP.
   Then ``conv.py``: Conv2d and ConvTranspose2d by im2col and col2im, and ``networks.py``:
   the MLP or convolutional encoder and decoder that a VAE is built from.
3. ``distributions.py``: the likelihoods, the KL and the reparameterization, each beside
   its gradient.
4. ``params.py``: every parameter as a view into one flat buffer.
5. ``model.py``: the VAE: the ELBO and IWAE objectives, forward then backward, and the
   backward pass through decoder, reparameterization and encoder.
6. ``optim.py``: SGD and Adam.
7. ``gradcheck.py``: finite differences, the judge of every gradient above.

``validation.py`` checks what users pass to a model; ``arrays.py`` answers which library
an array belongs to; ``initialization.py`` draws every layer's first weights; ``kernels.py`` (and ``kernels_numba.py``)
make Adam's update fast without changing its result. Nothing here imports from
``tinyvae.tools``.
"""
