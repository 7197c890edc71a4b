"""Facial-expression classifiers: on-device nets for 48x48 grey faces, vgg-fer, VGGFace ResNet-50."""

from keras_models.expression.presets import PRESETS, Preset, build_classifier, get_preset

__all__ = ["PRESETS", "Preset", "build_classifier", "get_preset"]
