"""Facial-expression classifiers: on-device nets for 48x48 grey faces, vgg-fer, VGGFace ResNet-50."""

from keras_models.expression.presets import ARCHS, arch_spec, build_classifier

__all__ = ["ARCHS", "build_classifier", "arch_spec"]
