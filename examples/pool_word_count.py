# examples/pool_word_count.py: a word count with Pool.map, the counting in
# the workers and the sum in the parent.  The argument is the start method.
import multiprocessing as mp
import sys
from collections import Counter

TEXT = [
    "multiprocessing is a package that supports spawning processes using "
    "an API similar to the threading module",
    "the multiprocessing package offers both local and remote concurrency",
    "effectively side-stepping the Global Interpreter Lock by using "
    "subprocesses instead of threads",
    "due to this the multiprocessing module allows the programmer to fully "
    "leverage multiple processors",
]


def count_words(line):
    return Counter(line.lower().split())


if __name__ == '__main__':
    ctx = mp.get_context(sys.argv[1] if len(sys.argv) > 1 else 'fork')
    lines = TEXT * 250
    with ctx.Pool(4) as pool:
        total = sum(pool.map(count_words, lines), Counter())
    most = sorted(sorted(total.items()), key=lambda item: -item[1])
    print(f'{len(lines)} lines, {len(total)} distinct words')
    print(most[:5])
