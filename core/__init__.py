"""Emotekit's bottom layer: what every other package may use, and which imports nothing of the project."""
