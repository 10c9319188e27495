"""Reads "protocol hex expr" lines from interop_pickle (C++), loads each pickle with
CPython's pickle.loads, and compares it with eval(expr).  Exit status 1 on any
difference, after printing every one."""
import pickle
import sys

failures = 0
count = 0
for line in sys.stdin:
    protocol, hexdata, expr = line.rstrip("\n").split(" ", 2)
    count += 1
    data = bytes.fromhex(hexdata)
    try:
        loaded = pickle.loads(data)
        expected = eval(expr)
        same = loaded == expected or repr(loaded) == repr(expected)
        same = same and type(loaded) is type(expected)
    except Exception as e:  # noqa: BLE001 - report anything
        same, loaded = False, e
    if not same:
        failures += 1
        print("protocol %s: %s loaded as %r" % (protocol, expr[:80], loaded), file=sys.stderr)
print("%d pickles checked, %d differ" % (count, failures))
sys.exit(1 if failures or count == 0 else 0)
