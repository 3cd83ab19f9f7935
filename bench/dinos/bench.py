#!/usr/bin/env python3
"""Dinosaurus Island benchmark: rnnlab vs the numpy reference, same file, same iterations, in one run.

Runs, alternately (the order flips every round, so drifting machine load hits both alike):
  numpy   python bench/dinos/reference.py --data FILE --iterations N ... --time
  rnnlab  node bench/dinos/rnnlab.js      --data FILE --iterations N ... --time   (public NameModel API)
  cli     node bin/rnnlab.js dinos        --data FILE --iterations N ...          (with --cli)
and the same two with --fast (rnnlab's fast arithmetic: sums in the fastest order, not numpy's),
each as a separate process, and reports per implementation the medians of: wall time of the whole
process (start-up included), the training time the program itself measures (after imports and
loading the corpus), iterations/s, CPU time (user + system) and peak RSS (from wait4's rusage of
that child). On a shared machine the CPU-time ratio is the steadier one: wall time also counts the
time a process waits for a core.
Every run prints the course's reports (loss every --every iterations and --names sampled names),
so both sides do the same work; the outputs are compared report by report and must be identical
through iteration --compare-through (the issue asks for 12 000).

Usage (from anywhere; paths are relative to the repository root):
    /path/to/venv/bin/python bench/dinos/bench.py [--runs 5] [--cli] [--no-fast] [--addon FILE.node] [--json]

The Python running this script must have numpy (it also runs reference.py); --python picks another.
--addon sets NAPI_RS_NATIVE_LIBRARY_PATH (the napi-rs loader in index.js honours it) so a release
build outside the repository can be measured, e.g. one made with
    CARGO_TARGET_DIR=/tmp/t npx napi build --platform --release \\
        --manifest-path crates/node/Cargo.toml --output-dir /tmp/addon
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def load_average():
    try:
        with open('/proc/loadavg') as f:
            return ' '.join(f.read().split()[:3])
    except OSError:
        return 'n/a'


def run_timed(cmd, env):
    """Run `cmd` in ROOT; return (wall seconds, rusage, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if p.returncode != 0:
        sys.exit('%s failed (exit %d):\n%s' % (' '.join(cmd), p.returncode, stderr))
    return wall, ru, stdout, stderr


def reports(text):
    """Split a printed trace into report blocks, keyed by iteration. Blank lines are dropped:
    the CLI separates reports with one, the reference does not."""
    blocks = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r'Iteration: (\d+), Loss: ', line)
        if m:
            cur = int(m.group(1))
            blocks[cur] = [line]
        elif line and cur is not None:
            blocks[cur].append(line)
    return blocks


def compare(ref, other, through):
    """(all reports through `through` identical?, iterations of the leading identical reports)."""
    a, b = reports(ref), reports(other)
    keys = sorted(a)
    leading = []
    for k in keys:
        if a[k] != b.get(k):
            break
        leading.append(k)
    required = [k for k in keys if k <= through]
    ok = bool(required) and all(a[k] == b.get(k) for k in required) and sorted(b) == keys
    return ok, leading


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default='../shared/data/dinos_course.txt', help='relative to the repository root')
    ap.add_argument('--iterations', type=int, default=35000)
    ap.add_argument('--hidden', type=int, default=50)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--every', type=int, default=2000)
    ap.add_argument('--names', type=int, default=7)
    ap.add_argument('--runs', type=int, default=5, help='rounds; each runs every implementation once')
    ap.add_argument('--cli', action='store_true', help='also time `node bin/rnnlab.js dinos`')
    ap.add_argument('--no-fast', action='store_true', help='skip the runs with the fast arithmetic')
    ap.add_argument('--addon', help='the .node file to load (sets NAPI_RS_NATIVE_LIBRARY_PATH)')
    ap.add_argument('--python', default=sys.executable, help='Python with numpy for reference.py')
    ap.add_argument('--node', default='node')
    ap.add_argument('--compare-through', type=int, default=12000,
                    help='reports through this iteration must be identical')
    ap.add_argument('--json', action='store_true')
    args = ap.parse_args()

    env = dict(os.environ)
    if args.addon:
        env['NAPI_RS_NATIVE_LIBRARY_PATH'] = os.path.abspath(args.addon)
    common = ['--data', args.data, '--iterations', str(args.iterations), '--hidden', str(args.hidden),
              '--seed', str(args.seed), '--every', str(args.every), '--names', str(args.names)]
    impls = [
        ('numpy', [args.python, 'bench/dinos/reference.py'] + common + ['--time']),
        ('rnnlab', [args.node, 'bench/dinos/rnnlab.js'] + common + ['--time']),
    ]
    if args.cli:
        impls.append(('rnnlab-cli', [args.node, 'bin/rnnlab.js', 'dinos'] + common))
    if not args.no_fast:
        impls.append(('fast', [args.node, 'bench/dinos/rnnlab.js'] + common + ['--fast', '--time']))
        if args.cli:
            impls.append(('fast-cli', [args.node, 'bin/rnnlab.js', 'dinos', '--fast'] + common))

    load_before = load_average()
    results = {name: [] for name, _ in impls}
    outputs = {name: [] for name, _ in impls}
    for r in range(args.runs):
        order = impls if r % 2 == 0 else impls[::-1]
        for name, cmd in order:
            wall, ru, out, err = run_timed(cmd, env)
            m = re.search(r'in ([0-9.]+) s', err)
            rec = {'wall': wall, 'train': float(m.group(1)) if m else None,
                   'cpu': ru.ru_utime + ru.ru_stime, 'maxrss_mb': ru.ru_maxrss / 1024.0,
                   'load': load_average()}
            results[name].append(rec)
            outputs[name].append(out)
            if not args.json:
                sys.stderr.write('round %d %-10s wall %7.3f s  train %s  cpu %7.3f s  peak RSS %6.1f MB  (load %s)\n' % (
                    r + 1, name, wall, '%7.3f s' % rec['train'] if rec['train'] is not None else '    n/a',
                    rec['cpu'], rec['maxrss_mb'], rec['load']))
    load_after = load_average()

    # sanity: every implementation prints the same reports as numpy (through --compare-through),
    # and every implementation is deterministic across its runs
    ref = outputs['numpy'][0]
    through = min(args.compare_through, max(reports(ref)))
    checks = {}
    for name, _ in impls:
        ok, leading = compare(ref, outputs[name][0], through)
        stable = all(o == outputs[name][0] for o in outputs[name])
        checks[name] = {'identical_through_required': ok, 'leading_identical_reports': len(leading),
                        'last_identical_iteration': leading[-1] if leading else None,
                        'reports': len(reports(outputs[name][0])), 'deterministic': stable}

    def med(name, key):
        vals = [x[key] for x in results[name] if x[key] is not None]
        return statistics.median(vals) if vals else None

    summary = {}
    for name, _ in impls:
        w, t = med(name, 'wall'), med(name, 'train')
        summary[name] = {'wall_s': w, 'train_s': t, 'iterations_per_s_wall': args.iterations / w,
                         'iterations_per_s_train': args.iterations / t if t else None,
                         'cpu_s': med(name, 'cpu'), 'peak_rss_mb': med(name, 'maxrss_mb'),
                         'walls': [round(x['wall'], 3) for x in results[name]]}
    ratios = {}
    for name in summary:
        if name == 'numpy':
            continue
        ratios[name] = {'wall': summary['numpy']['wall_s'] / summary[name]['wall_s'],
                        'cpu': summary['numpy']['cpu_s'] / summary[name]['cpu_s']}
        if summary[name]['train_s']:
            ratios[name]['train'] = summary['numpy']['train_s'] / summary[name]['train_s']

    report = {'iterations': args.iterations, 'hidden': args.hidden, 'every': args.every, 'names': args.names,
              'data': args.data, 'runs': args.runs, 'load_before': load_before, 'load_after': load_after,
              'addon': env.get('NAPI_RS_NATIVE_LIBRARY_PATH'), 'summary': summary, 'speedup_vs_numpy': ratios,
              'checks': checks}
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        print('Dinosaurus Island, %d iterations, hidden %d, reports every %d with %d names, %s; %d rounds' % (
            args.iterations, args.hidden, args.every, args.names, args.data, args.runs))
        print('load average before: %s, after: %s' % (load_before, load_after))
        print('%-10s %10s %10s %12s %12s %10s %10s' % ('', 'wall (s)', 'train (s)', 'it/s (wall)', 'it/s (train)',
                                                        'CPU (s)', 'RSS (MB)'))
        for name, s in summary.items():
            print('%-10s %10.3f %10s %12.0f %12s %10.3f %10.1f' % (
                name, s['wall_s'], '%.3f' % s['train_s'] if s['train_s'] else 'n/a', s['iterations_per_s_wall'],
                '%.0f' % s['iterations_per_s_train'] if s['iterations_per_s_train'] else 'n/a',
                s['cpu_s'], s['peak_rss_mb']))
        for name, r in ratios.items():
            print('speed-up of %s over numpy (medians): wall %.1fx%s, CPU time %.1fx' % (
                name, r['wall'], ', training %.1fx' % r['train'] if 'train' in r else '', r['cpu']))
        for name, c in checks.items():
            print('%-10s output: %s through iteration %d; %d of %d reports identical to numpy from the start; '
                  'deterministic across runs: %s' % (
                      name, 'identical' if c['identical_through_required'] else 'DIFFERENT', through,
                      c['leading_identical_reports'], c['reports'], c['deterministic']))
    if not all(c['identical_through_required'] for c in checks.values()):
        sys.exit(1)


if __name__ == '__main__':
    main()
