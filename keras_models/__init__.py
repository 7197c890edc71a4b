"""Emotekit's Keras 3 models: functional networks, training wrappers and presets.

Models know nothing about files, data sources or the CLI.
"""
