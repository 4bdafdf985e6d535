"""How the tools write a number for people, alike in Python and on the page
(``static/app.js``, which writes with JavaScript's ``toFixed``)."""
import math
from decimal import ROUND_HALF_UP, Decimal

KB, MB = 1 << 10, 1 << 20


def fixed(value, decimals):
    """``value`` to ``decimals`` decimals as JavaScript's ``toFixed`` writes it, a half rounded
    up on the double's exact value, so that the tools and the page show a number alike (0.125
    was "0.12" in Python's format and "0.13" on the page)."""
    if not math.isfinite(value):
        return str(value)
    return str(Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def score_text(score, threshold):
    """A score as text beside its label's decision: two decimals, or as many more (up to the
    record's four) as tell it from ``threshold`` (0.3555 and 0.3572 against 0.3566 both read
    "0.36", one face labelled and one not), as the page's ``apart`` does."""
    decimals = 2
    while decimals < 4 and fixed(score, decimals) == fixed(threshold, decimals):
        decimals += 1
    return fixed(score, decimals)


def byte_text(n):
    """A byte count in MB from 1 MB up and in KB below, with one decimal, a half rounded up:
    as the page's ``byteText`` says a limit (``static/app.js``)."""
    scale, unit = (MB, "MB") if n >= MB else (KB, "KB")
    return f"{fixed(n / scale, 1)} {unit}"  # over a power of two: exact in a double
