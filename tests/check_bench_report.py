"""tests/check_bench_report.py BENCH_DIR FIXTURE_DIR -- bench/report.py on a fixed input.

FIXTURE_DIR (tests/bench_report/) is a results directory as bench/report.sh
leaves one, with made-up numbers: two rounds of the process, queues and
managers benchmarks and of two scaling series (Queue; Map, CPython's side
stopping at a smaller n).  The check copies it to a temporary directory,
runs BENCH_DIR/report.py on it (with --readme on a small Markdown file, and
--goals on the fixture's own goals.tsv, so that the check does not move with
the project's goals) and
checks what the report says: the medians and spreads, both ratios, each
goal and whether it holds, the CSV and JSON files, the gnuplot SVGs, and
the README's part replaced.  Exits 77 (skipped) without gnuplot.
"""
import csv
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile


def main(bench, fixture):
    if shutil.which('gnuplot') is None:
        print('gnuplot not found (./dev deps installs gnuplot-nox): skipped')
        return 77
    failures = []

    def expect(ok, what):
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / 'results' / '2026-12-07'
        shutil.copytree(fixture, out)
        readme = pathlib.Path(tmp) / 'README.md'
        readme.write_text('# Benchmarks\n\nbefore\n<!-- report:begin -->\nold report\n<!-- report:end -->\nafter\n')
        subprocess.run([sys.executable, str(pathlib.Path(bench) / 'report.py'), str(out), '--readme', str(readme),
                        '--goals', str(out / 'goals.tsv')], check=True, stdout=subprocess.DEVNULL)
        md = (out / 'report.md').read_text()
        rows = {line.split(' | ')[0].lstrip('| '): line for line in md.splitlines() if line.startswith('| ')}

        # fork: library 300 and 320 µs, raw 200: median 310, 1.55x raw; goal <= 1.25.
        fork = rows.get('fork: Process start + join', '')
        expect('310 (300–320)' in fork, f'fork row: median and spread: {fork!r}')
        expect('| 1.55× |' in fork, f'fork row: library÷raw: {fork!r}')
        expect('| lib/raw <= 1.25 | **no** (1.55) |' in fork, f'fork row: goal: {fork!r}')
        # Queue: 1 M items/s against 1 M raw; goal >= 0.8 holds.  CPython 0.1 M/s: 10x.
        queue = rows.get('Queue, small ints from a forked producer', '')
        expect('| lib/raw >= 0.8 | yes (1.00) |' in queue, f'Queue row: goal: {queue!r}')
        expect('| 10.00× |' in queue, f'Queue row: CPython÷library: {queue!r}')
        # SimpleQueue has no goal: both goal cells empty.
        simple = rows.get('SimpleQueue, small ints from a forked producer', '')
        expect(simple.endswith('|  |  |'), f'SimpleQueue row: no goal: {simple!r}')
        # managers: 100 k ops/s against 150 k raw: 0.67 of raw, the goal 0.8 does not hold;
        # as a ratio of times, library÷raw is 1.50.
        put = rows.get('managed dict d[k] = v from a child', '')
        expect('| 1.50× |' in put and '| **no** (0.67) |' in put, f'managers row: {put!r}')
        # modules not in the input have no rows
        expect(not any(r.startswith('spawn') or r.startswith('round trip') for r in rows),
               'rows of modules that did not run')
        expect('Goals holding: 1 of 6.' in md, 'the count of goals holding')

        report = json.loads((out / 'report.json').read_text())
        expect(len(report['operations']) == 7, f"report.json: {len(report['operations'])} operations, 7 expected")
        expect(report['meta']['date'] == '2026-12-07 06:00 UTC', 'report.json: the run\'s meta data')
        with open(out / 'rounds.csv') as f:
            lines = list(csv.DictReader(f))
        # 7 operations x 3 sides x 2 rounds
        expect(len(lines) == 42, f'rounds.csv: {len(lines)} lines, 42 expected')
        with open(out / 'scale.csv') as f:
            lines = list(csv.DictReader(f))
        # Queue: 3 sides x 3 sizes; Map: library and raw x 3 sizes, CPython x 2; 2 rounds each
        expect(len(lines) == (9 + 8) * 2, f'scale.csv: {len(lines)} lines, 34 expected')

        for series in ('Queue', 'Map'):
            svg = out / 'plots' / f'{series}.svg'
            expect(svg.exists() and '<svg' in svg.read_text() and svg.stat().st_size > 2000,
                   f'{svg.name}: no plot written')
            expect(f'![{series}](plots/{series}.svg)' in md, f'report.md does not show {svg.name}')
        gp = (out / 'plots' / 'Map.gp').read_text()
        expect('CPython up to n = 1,000 only' in gp, 'Map plot: the CPython cap is not stated')
        expect('set logscale x 10' in gp and 'set logscale y' in gp, 'Map plot: not log-log')
        dat = (out / 'plots' / 'Map.dat').read_text().splitlines()
        expect(dat[-1].split()[0] == '100000' and dat[-1].split()[-1] == 'NaN',
               f'Map.dat: CPython missing at n = 100000 should be NaN: {dat[-1]!r}')

        text = readme.read_text()
        expect('old report' not in text and 'before' in text and 'after' in text, 'README: part not replaced')
        expect('(results/2026-12-07/plots/Queue.svg)' in text, 'README: plot links not relative to it')
    for f in failures:
        print(f'check_bench_report: {f}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:3]))
