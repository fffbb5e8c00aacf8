"""Evaluate: search quality on labelled queries (ir-measures, paired tests), model figures, and two models side
by side."""
