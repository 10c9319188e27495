"""bench/summarize_scale.py DIR -- the scaling series of one benchmark program.

DIR holds cpp-<k>.json (a bench program run with --scale=..., Google
Benchmark's JSON) and py-<k>.json (its cpython_*.py run with --scale ...,
bench/scale.py's JSON) per round k.  The C++ benchmarks are named
BM_Scale_<series>_<Lib|Raw>/<n>, the CPython values <series>/<n>; each value
is the seconds one batch of n takes.  Prints, per series and size, the
median over the rounds for the library, the raw calls and CPython.
bench/report.py reads the same directories through load() and plots them.
"""
import statistics
import sys

from rounds import cpp_medians, load_rounds

# series -> (what one batch of n is, what n counts, how the plot shows it:
# 'time' = seconds per batch, 'rate' = n x ops_per_n per second, ops_per_n,
# the plot's y label)
SERIES = {
    'StartJoinSeq': ('start + join of n children, one after another (fork)', 'children', 'time', 1,
                     'seconds for all n'),
    'StartJoinAll': ('start of n children, then join of all n (fork)', 'children', 'time', 1,
                     'seconds for all n'),
    'Queue': ('n small ints through a Queue from a forked producer', 'items', 'time', 1,
              'seconds for all n items'),
    'RoundTrip': ('send_bytes of n bytes + recv_bytes of the echo', 'message size (bytes)', 'time', 1,
                  'seconds per round trip'),
    'Map': ('Pool(2).map(ident, range(n)), default chunksize', 'items', 'time', 1, 'seconds per map'),
    'Clients': ('n client processes at once, 1000 d[k] = v each on one managed dict (one vCPU)',
                'client processes', 'rate', 1000, 'operations per second, all clients'),
}
SIDES = ('library', 'raw', 'CPython')
TO_SECONDS = {'ns': 1e-9, 'us': 1e-6, 'ms': 1e-3, 's': 1.0}


def cpp_values(doc):
    """{'<series>/library/<n>' or '<series>/raw/<n>': seconds per batch}."""
    out = {}
    for name, b in cpp_medians(doc).items():
        if not name.startswith('BM_Scale_'):
            continue
        head, n = name[len('BM_Scale_'):].split('/')
        series, side = head.rsplit('_', 1)
        out[f"{series}/{'library' if side == 'Lib' else 'raw'}/{n}"] = b['real_time'] * TO_SECONDS[b['time_unit']]
    return out


def py_values(doc):
    """{'<series>/CPython/<n>': seconds per batch}."""
    return {f"{k.split('/')[0]}/CPython/{k.split('/')[1]}": v for k, v in doc['scale'].items()}


def load(directory):
    """{series: {side: {n: [seconds per batch, one per round]}}}."""
    out = {}
    for cpp, py in load_rounds(directory, cpp_values, py_values):
        for key, value in {**cpp, **py}.items():
            series, side, n = key.split('/')
            out.setdefault(series, {}).setdefault(side, {}).setdefault(int(n), []).append(value)
    return out


def shown(series, n, seconds):
    """The value a plot and a table show: seconds per batch, or ops/s."""
    kind, per = SERIES[series][2:4]
    return n * per / seconds if kind == 'rate' else seconds


def main(directory):
    for series, sides in load(directory).items():
        what, x, kind = SERIES[series][:3]
        unit = 'ops/s' if kind == 'rate' else 's per batch'
        print(f'{series}: {what} ({unit}, median over the rounds)')
        print(f"| {x} | {' | '.join(SIDES)} |")
        print('|---:|' + '---:|' * len(SIDES))
        for n in sorted({n for values in sides.values() for n in values}):
            cells = []
            for side in SIDES:
                rounds = sides.get(side, {}).get(n)
                cells.append(f'{shown(series, n, statistics.median(rounds)):.4g}' if rounds else '')
            print(f"| {n} | {' | '.join(cells)} |")
        print()


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
