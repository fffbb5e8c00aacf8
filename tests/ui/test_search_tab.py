"""The search tab's example queries (the demo's only for the demo, another catalog's from its own categories), and
the Advanced area's state on load."""

import gradio as gr
import pandas as pd

from mmsearch.ui.search_tab import EXAMPLES, reopened, suggested


def test_the_demo_suggests_its_own_queries():
    assert suggested("demo", pd.DataFrame({"category": ["mug"]})) == EXAMPLES


def test_another_catalog_suggests_its_most_common_categories():
    table = pd.DataFrame({"category": ["animals/birds"] * 3 + ["food/ice_cream"] * 2 + ["hats", "", None]})
    assert suggested("stamps", table) == ["birds", "ice cream", "hats"]
    assert suggested("stamps", table, most=1) == ["birds"]


def test_a_catalog_without_categories_suggests_nothing_rather_than_the_demos():
    assert suggested("photos", pd.DataFrame({"item_id": ["a"], "title": ["photo-1"]})) == []


def test_the_advanced_area_is_reopened_on_load_but_never_shut_by_it():
    opened = reopened(True)
    assert isinstance(opened, gr.Accordion) and opened.open
    assert reopened(False) == gr.skip()  # a late load must not close what a person opened meanwhile
