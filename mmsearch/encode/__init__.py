"""Encode: models that turn pictures and text into one embedding space (open_clip, our two-tower), here or on Ray."""
