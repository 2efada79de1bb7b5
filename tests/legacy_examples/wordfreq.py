"""Count words in a text (Python 2 style): the engine half of ``pwordfreq.py``.

Modelled on the 0.10 example ``docs/examples/kernel/wordfreq.py``.
"""


def wordfreq(text):
    """A dict of word -> count for the whitespace-separated words of ``text``."""
    freqs = {}
    for word in text.split():
        freqs[word] = freqs.get(word, 0) + 1
    return freqs


def print_wordfreq(freqs, n=10):
    """Print the ``n`` most frequent words, most frequent first."""
    words, counts = freqs.keys(), freqs.values()
    items = zip(counts, words)
    items.sort(reverse=True)
    for (count, word) in items[:n]:
        print word, count
