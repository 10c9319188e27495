"""bench/rounds.py -- what the summarize_*.py scripts share.

A run_*.sh (bench/alternate.sh) leaves, per round k, cpp-<k>.json (Google
Benchmark's JSON) and py-<k>.json (the CPython script's) in one directory.
Each table cell is the median over the rounds of that round's value, itself
the median over the repetitions of one program run.
"""
import json
import pathlib
import statistics


def cpp_medians(doc):
    """{benchmark name without '/iterations...': its `median` aggregate}."""
    out = {}
    for b in doc['benchmarks']:
        if b.get('run_type') == 'aggregate' and b.get('aggregate_name') == 'median':
            out[b['run_name'].split('/iterations')[0]] = b
    return out


def load_rounds(directory, cpp_values, py_values=lambda doc: doc):
    """[(cpp_values(cpp doc), py_values(py doc)) for each round, in order]."""
    d = pathlib.Path(directory)
    rounds = []
    for cpp in sorted(d.glob('cpp-*.json')):
        py = d / cpp.name.replace('cpp-', 'py-')
        rounds.append((cpp_values(json.loads(cpp.read_text())), py_values(json.loads(py.read_text()))))
    return rounds


def median(rounds, src, name):
    """The median over the rounds of value `name` of side `src` (0: C++, 1: CPython)."""
    return statistics.median(r[src][name] for r in rounds)
