"""bench/report.py DIR [--readme FILE] -- the benchmark report of one bench/report.sh run.

DIR is bench/results/<date>/ as bench/report.sh leaves it: raw/<module>/
holds the rounds of one run_*.sh (cpp-<k>.json and py-<k>.json), raw/scale-<name>/
the rounds of one scaling series run (bench/summarize_scale.py), and meta.json
what report.sh knew about the run.  The operations, the summarizer values
they read and their goals come from bench/goals.tsv; each module's own
summarizer turns its JSON into values (its cpp_values and py_values).

Writes into DIR:
  report.md     the table (median and min-max over the rounds, the ratios,
                the goal and whether it holds) and the plots
  report.json   the same numbers, every round included
  rounds.csv    one line per operation, side and round
  scale.csv     one line per series, side, size and round
  plots/        per scaling series a gnuplot script, its data and the SVG
--readme FILE replaces the part of FILE between the lines
'<!-- report:begin -->' and '<!-- report:end -->' with the report, its
links made relative to FILE's directory.  --goals FILE reads the operations
and goals from FILE instead of bench/goals.tsv.
"""
import argparse
import csv
import importlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys

import rounds
import summarize_scale

HERE = pathlib.Path(__file__).resolve().parent
SIDES = rounds.SIDES
BEGIN, END = '<!-- report:begin -->', '<!-- report:end -->'


def summarizer(module):
    """The module of bench/ that owns `module`'s JSON (bench/goals.tsv's first column)."""
    return importlib.import_module({'process': 'summarize', 'spawn': 'summarize'}.get(module, f'summarize_{module}'))


def operations(directory):
    """bench/goals.tsv's rows, module by module, for the modules that ran."""
    rows = []
    for module in dict.fromkeys(goal['module'] for goal in rounds.read_goals()):
        source = directory / 'raw' / module
        if source.is_dir() and any(source.glob('cpp-*.json')):
            mod = summarizer(module)
            rows += rounds.operations(module, rounds.load_rounds(source, mod.cpp_values,
                                                                 getattr(mod, 'py_values', lambda doc: doc)))
    return rows


def fmt(v):
    if v is None:
        return ''
    return f'{v:.3g}' if abs(v) < 100 else f'{v:.0f}'


def spread(median, low, high, count, f=fmt):
    """'median (min–max)', or the median alone when there was one round."""
    return f(median) if count < 2 else f'{f(median)} ({f(low)}–{f(high)})'


def cell(side):
    return '' if side is None else spread(side['median'], side['min'], side['max'], len(side['rounds']))


def ratio(v):
    return '' if v is None else f'{v:.2f}×'


def goal_cell(row):
    if row['goal'] == '-':
        return '', ''
    if row['holds'] is None:
        return row['goal'], 'not measured'
    verdict = 'yes' if row['holds'] else '**no**'
    return row['goal'], f"{verdict} ({row['goal_ratio']:.2f})"


def table(rows):
    out = ['| operation | unit | library | raw | CPython 3.11 | library÷raw | CPython÷library | goal | holds |',
           '|---|---|---:|---:|---:|---:|---:|---|---|']
    for r in rows:
        goal, holds = goal_cell(r)
        out.append(f"| {r['operation']} | {r['unit']} | {cell(r['library'])} | {cell(r['raw'])} | "
                   f"{cell(r['cpython'])} | {ratio(r['library_over_raw'])} | {ratio(r['cpython_over_library'])} | "
                   f'{goal} | {holds} |')
    return out


# ------------------------------------------------------------------ the plots

def scale_series(directory):
    """{series: {side: {n: [seconds per round]}}} over every raw/scale-*/ directory."""
    found = {}
    for d in sorted((directory / 'raw').glob('scale-*')):
        if d.is_dir() and not d.name.endswith('.failed'):
            for series, sides in summarize_scale.load(d).items():
                found.setdefault(series, {}).update(sides)
    return {series: found[series] for series in summarize_scale.SERIES if series in found}


GNUPLOT = '''set terminal svg size 760,480 dynamic font "sans,12"
set output "{svg}"
set title "{title}" noenhanced
set xlabel "{xlabel}" noenhanced
set ylabel "{ylabel}" noenhanced
set logscale x {xbase}
set logscale y
set format x "%.0s%c"
set format y "%.0e"
set rmargin 6
set grid
set key top left
set datafile missing "NaN"
plot "{dat}" using 1:2:3:4 with yerrorlines lw 2 pt 7 title "library", \\
     "{dat}" using 1:5:6:7 with yerrorlines lw 2 pt 5 title "raw system calls", \\
     "{dat}" using 1:8:9:10 with yerrorlines lw 2 pt 9 title "CPython 3.11"
'''


def plot(series, sides, plots):
    """Write plots/<series>.dat, .gp and, with gnuplot, .svg; return the SVG's name."""
    what, xlabel, _, _, ylabel = summarize_scale.SERIES[series]
    ns = sorted({n for values in sides.values() for n in values})
    lines = ['# n  library median min max  raw median min max  CPython median min max']
    for n in ns:
        cols = [str(n)]
        for side in ('library', 'raw', 'CPython'):
            per_round = sides.get(side, {}).get(n)
            if per_round:
                shown = [summarize_scale.shown(series, n, s) for s in per_round]
                cols += [f'{statistics.median(shown):.6g}', f'{min(shown):.6g}', f'{max(shown):.6g}']
            else:
                cols += ['NaN'] * 3
        lines.append(' '.join(cols))
    (plots / f'{series}.dat').write_text('\n'.join(lines) + '\n')
    title = what
    cpython_max = max(sides.get('CPython', {}) or [0])
    if cpython_max and cpython_max < ns[-1]:
        title += f' (CPython up to n = {cpython_max:,} only, to keep the run bounded)'
    script = GNUPLOT.format(svg=f'{series}.svg', dat=f'{series}.dat', title=title, xlabel=xlabel,
                            ylabel=ylabel, xbase=2 if series == 'Clients' else 10)
    (plots / f'{series}.gp').write_text(script)
    gnuplot = shutil.which('gnuplot')
    if gnuplot is None:
        raise SystemExit('report.py: gnuplot not found (./dev deps installs the Debian package gnuplot-nox)')
    # cwd: the script names its data and output relative to plots/.
    subprocess.run([gnuplot, f'{series}.gp'], cwd=plots, check=True)
    return f'{series}.svg'


def scale_tables(series_data):
    out = []
    for series, sides in series_data.items():
        what, xlabel, kind = summarize_scale.SERIES[series][:3]
        unit = 'operations/s' if kind == 'rate' else 'ms per batch'
        scale = 1 if kind == 'rate' else 1e3
        out += [f'**{series}**: {what} ({unit}; median and min–max over the rounds)', '',
                f'| {xlabel} | library | raw | CPython 3.11 | CPython÷library (time) |', '|---:|---:|---:|---:|---:|']
        for n in sorted({n for values in sides.values() for n in values}):
            cells, med = [], {}
            for side in ('library', 'raw', 'CPython'):
                per_round = sides.get(side, {}).get(n)
                if per_round:
                    shown = [summarize_scale.shown(series, n, s) * scale for s in per_round]
                    med[side] = statistics.median(per_round)
                    cells.append(spread(statistics.median(shown), min(shown), max(shown), len(shown), fmt))
                else:
                    cells.append('')
            speed = f"{med['CPython'] / med['library']:.1f}×" if 'CPython' in med and 'library' in med else ''
            out.append(f"| {n:,} | {' | '.join(cells)} | {speed} |")
        out.append('')
    return out


# ------------------------------------------------------------------ main

def write_report(directory, readme=None):
    directory = pathlib.Path(directory)
    meta_path = directory / 'meta.json'
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    rows = operations(directory)
    series_data = scale_series(directory)
    plots = directory / 'plots'
    svgs = {}
    if series_data:
        plots.mkdir(exist_ok=True)
        svgs = {series: plot(series, sides, plots) for series, sides in series_data.items()}

    held = [r for r in rows if r['holds'] is not None]
    md = [f"Run of {meta.get('date', '?')}: `{meta.get('command', 'bench/report.sh')}`, "
          f"{meta.get('rounds', '?')} rounds; {meta.get('machine', '')}.", '']
    if '--quick' in meta.get('command', ''):
        md += ['**A `--quick` run**: one round and smaller series, made to check the pipeline; '
               'its numbers are not a measurement.', '']
    if meta.get('load', 0) > meta.get('cpus', 1e9):
        md += [f"**The machine was busy**: load average {meta['load']} on {meta['cpus']} CPUs when the run "
               'started, so every number here is noisy; only ratios within one round mean much.', '']
    md += [
          'Each cell: the median over the rounds (min–max over the rounds in brackets); a round is one '
          'run of the C++ program and one of the CPython script, alternated, and its value the median '
          'of that run\'s repetitions.  Both ratios are ratios of times per operation (of 1/rate for '
          'the rates), so library÷raw above 1 is slower than raw and CPython÷library above 1 is '
          'faster than CPython.  The goal is checked on the medians, in the unit shown.', '',
          *table(rows), '',
          f"Goals holding: {sum(1 for r in held if r['holds'])} of {len(held)}.", '']
    if series_data:
        md += ['How cost grows (log scales; the bars are the min–max over the rounds):', '']
        md += [f'![{s}](plots/{svg})' for s, svg in svgs.items()]
        md += ['', *scale_tables(series_data)]
    (directory / 'report.md').write_text('\n'.join(md) + '\n')
    (directory / 'report.json').write_text(json.dumps({'meta': meta, 'operations': rows, 'scale': {
        s: {side: {str(n): v for n, v in values.items()} for side, values in sides.items()}
        for s, sides in series_data.items()}}, indent=1) + '\n')
    with open(directory / 'rounds.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['module', 'operation', 'unit', 'side', 'round', 'value'])
        for r in rows:
            for side in SIDES:
                for k, v in enumerate((r[side] or {}).get('rounds', []), 1):
                    w.writerow([r['module'], r['operation'], r['unit'], side, k, f'{v:.6g}'])
    with open(directory / 'scale.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['series', 'side', 'n', 'round', 'seconds_per_batch'])
        for s, sides in series_data.items():
            for side, values in sides.items():
                for n, per_round in sorted(values.items()):
                    for k, v in enumerate(per_round, 1):
                        w.writerow([s, side, n, k, f'{v:.6g}'])
    if readme:
        readme = pathlib.Path(readme)
        text = readme.read_text()
        if BEGIN not in text or END not in text:
            raise SystemExit(f'report.py: {readme} has no {BEGIN} ... {END} part to replace')
        rel = os.path.relpath(directory, readme.parent)
        body = '\n'.join(md).replace('](plots/', f']({rel}/plots/')
        body += f'\nThe raw JSON and CSV: [{rel}/]({rel}/).\n'
        head, rest = text.split(BEGIN, 1)
        readme.write_text(f'{head}{BEGIN}\n{body}\n{END}{rest.split(END, 1)[1]}')
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('directory')
    parser.add_argument('--readme', help='a Markdown file whose report part to replace')
    parser.add_argument('--goals', help='the goals table to use instead of bench/goals.tsv')
    args = parser.parse_args()
    if args.goals:
        rounds.GOALS = pathlib.Path(args.goals)
    rows = write_report(args.directory, args.readme)
    print((pathlib.Path(args.directory) / 'report.md').read_text())
    return 0 if rows or (pathlib.Path(args.directory) / 'raw').is_dir() else 1


if __name__ == '__main__':
    sys.exit(main())
