"""Word frequencies counted in parallel, one text file per engine (Python 2 style).

Modelled on the 0.10 example ``docs/examples/kernel/pwordfreq.py``; needs 4 engines
started in this directory (they open ``davinci0.txt`` ... ``davinci3.txt``).
"""

from itertools import repeat
from wordfreq import print_wordfreq, wordfreq


def pwordfreq(rc, text):
    """Parallel word frequency counter.

    rc - a MultiEngineClient
    text - the name of a string on the engines to count the words of
    """
    rc.execute('freqs = wordfreq(%s)' % text)
    freqs_list = rc.pull('freqs')
    word_set = set()
    for f in freqs_list:
        word_set.update(f.keys())
    freqs = dict(zip(word_set, repeat(0)))
    for f in freqs_list:
        for word, count in f.iteritems():
            freqs[word] += count
    return freqs

if __name__ == '__main__':
    from IPython.kernel import client
    ipc = client.MultiEngineClient()

    # the counting code on the engines
    ipc.run('wordfreq.py')

    print "Serial word frequency count:"
    text = open('davinci.txt').read()
    freqs = wordfreq(text)
    print_wordfreq(freqs, 10)

    print "\nParallel word frequency count:"
    files = ['davinci%i.txt' % i for i in range(4)]
    ipc.scatter('textfile', files)
    ipc.execute('text = open(textfile[0]).read()')
    pfreqs = pwordfreq(ipc, 'text')
    print_wordfreq(pfreqs, 10)
    print "\nSame counts:", pfreqs == freqs
