"""tf.data sources for Emotekit: image folders, built-in emoji, FER-2013 (CSV, folders, TFDS).

This package knows nothing about models: it yields uint8 images and integer labels.
"""

from data_pipelines.imageset import ImageSet
from data_pipelines.pipeline import make_dataset
from data_pipelines.sources import load_source, load_sources

__all__ = ["ImageSet", "load_source", "load_sources", "make_dataset"]
