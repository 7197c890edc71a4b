"""Emotekit's on-device emoji keyboard (web app, `python -m mobile_demo`) and the emojify app."""
