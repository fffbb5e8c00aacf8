from mmsearch.search.results import Result
from mmsearch.ui.search_tab import _outputs


def test_the_status_line_says_when_nothing_matches_well():
    hit = Result("demo-00001", 0.41, "Blue twill cap", "/nowhere.jpg", category="cap")
    _, _, weak = _outputs([hit], '"warm winter coat"', match="weak")
    assert weak.startswith('No item matches "warm winter coat" well; these are the closest')
    _, _, good = _outputs([hit], '"blue cap"', match="good")
    assert good.startswith('1 results for "blue cap"')
    assert _outputs([], '"blue cap"')[2] == 'No results for "blue cap".'
