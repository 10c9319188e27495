"""bench/rounds.py -- what the summarize_*.py scripts share.

A run_*.sh (bench/alternate.sh) leaves, per round k, cpp-<k>.json (Google
Benchmark's JSON) and py-<k>.json (the CPython script's) in one directory.
Each table cell is the median over the rounds of that round's value, itself
the median over the repetitions of one program run.  The goals are the rows
of bench/goals.tsv: operations() turns a module's rounds into those rows'
values and verdicts (bench/report.py's table), print_goals() prints the
verdicts under a summarizer's own table.
"""
import json
import pathlib
import statistics

GOALS = pathlib.Path(__file__).resolve().with_name('goals.tsv')
SIDES = ('library', 'raw', 'cpython')


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


def read_goals(path=None):
    """bench/goals.tsv's rows (or GOALS's, when a caller points it elsewhere), as
    dicts keyed by its header."""
    lines = [line for line in (path or GOALS).read_text().splitlines() if line and not line.startswith('#')]
    header = lines[0].split('\t')
    return [dict(zip(header, line.split('\t'))) for line in lines[1:]]


def check_goal(goal, values):
    """Goal 'lib/raw <= 1.25' on {'lib': .., 'raw': .., 'cpython': ..}: (holds, ratio),
    or None without a goal or without one of the two values."""
    if goal == '-':
        return None
    ratio_text, op, bound = goal.split()
    a, b = ratio_text.split('/')
    if values.get(a) is None or values.get(b) is None:
        return None
    ratio = values[a] / values[b]
    return (ratio <= float(bound) if op == '<=' else ratio >= float(bound)), ratio


def is_rate(unit):
    return unit.endswith('/s')


def operations(module, rounds):
    """The goals.tsv rows of `module`, each with, per side, the median, min, max
    and every round of its value in the unit shown; the two ratios of time
    per op (library_over_raw, cpython_over_library); and the goal's verdict
    (holds: True, False or None; goal_ratio)."""
    rows = []
    for goal in read_goals():
        if goal['module'] != module:
            continue
        row = {'module': module, 'operation': goal['operation'], 'unit': goal['unit'],
               'goal': goal['goal'], 'note': goal['note']}
        medians = {}
        for side in SIDES:
            if goal[side] == '-':
                row[side] = None
                continue
            src, name = goal[side].split(':', 1)
            # A round without the value (a benchmark that failed) is left out.
            found = [r[0 if src == 'cpp' else 1].get(name) for r in rounds]
            values = [eval(goal['convert'], {}, {'x': x}) for x in found if x is not None]
            if not values:
                row[side] = None
                continue
            row[side] = {'median': statistics.median(values), 'min': min(values), 'max': max(values),
                         'rounds': values}
            medians[side] = row[side]['median']
        cost = {side: (1 / v if is_rate(goal['unit']) else v) for side, v in medians.items()}
        row['library_over_raw'] = cost['library'] / cost['raw'] if 'raw' in cost else None
        row['cpython_over_library'] = cost['cpython'] / cost['library'] if 'cpython' in cost else None
        verdict = check_goal(goal['goal'], {'lib': medians.get('library'), 'raw': medians.get('raw'),
                                            'cpython': medians.get('cpython')})
        row['holds'], row['goal_ratio'] = verdict if verdict else (None, None)
        rows.append(row)
    return rows


def print_goals(module, directory, cpp_values, py_values=lambda doc: doc):
    """One line per goal of `module` in bench/goals.tsv: holds or not, and the ratio."""
    for row in operations(module, load_rounds(directory, cpp_values, py_values)):
        if row['holds'] is not None:
            print(f"goal {row['operation']}, {row['goal']}: "
                  f"{'holds' if row['holds'] else 'does NOT hold'} ({row['goal_ratio']:.2f})")
