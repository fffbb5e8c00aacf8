"""The kinds of model ``--model`` takes, one module each, named by the spec's prefix: ``two-tower:<dir>``
(two_tower.py) and ``clip:<arch>/<pretrained tag or checkpoint>`` (clip.py). A module here holds ``PREFIX`` (the spec's
prefix), ``FORM`` (how the rest of the spec reads, for messages) and ``load(rest, device)``; a module added here is a
model ``--model`` takes (encoders.load_encoder finds it). docs/layout.md shows which to copy."""
