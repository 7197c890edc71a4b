"""Code that more than one model family uses: DiffAugment (`augment`), the id -> noise function of
claimable ids (`noise`) and per-replica noise rows under tf.distribute (`replicas`).

A family package (dcgan, stylegan, vae, ...) may import from here; nothing here imports a family.
Import the submodules themselves: this file loads nothing (the noise needs no TensorFlow).
"""
