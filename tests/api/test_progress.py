"""The shared progress bar: counts, earlier items and ETA, one redrawn line."""

import io

from sdgmm._progress import ProgressBar


def test_bar_counts_items_of_this_run_after_the_earlier_ones():
    out = io.StringIO()
    bar = ProgressBar(10, "sweep", "points", before=4, stream=out)
    bar(6)  # the last item is always drawn
    bar.close()
    last = out.getvalue().split("\r")[-1]
    assert last.startswith("sweep: [" + "#" * 30 + "] 10/10 points (4 stored before), ")
    assert "ETA 0s" in last and last.endswith("\n")


def test_bar_takes_a_new_total_and_says_nothing_of_earlier_items_without_them():
    out = io.StringIO()
    bar = ProgressBar(1, "sdgmm figure F1", "alphas", stream=out)
    assert "0/1 alphas, 0s, ETA ?" in out.getvalue()
    bar(20, 20)
    assert out.getvalue().split("\r")[-1].startswith("sdgmm figure F1: [" + "#" * 30 + "] 20/20 alphas, ")
    assert "stored before" not in out.getvalue()
