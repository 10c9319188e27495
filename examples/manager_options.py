# examples/manager_options.py: the command line of the manager examples'
# Python originals, read as manager_options.hpp reads it for the C++ ones:
# --address HOST:PORT (or the PATH of a unix socket), --authkey KEY, and any
# flag without a value (such as a client's --get).
import sys
from multiprocessing import AuthenticationError


def parse_manager_options(default_host):
    """(address, authkey, flags) from sys.argv, with the docs' defaults."""
    argv, values, flags = sys.argv[1:], {}, set()
    while argv:
        arg = argv.pop(0)
        if arg in ('--address', '--authkey') and argv:
            values[arg] = argv.pop(0)
        else:
            flags.add(arg)
    text = values.get('--address', f'{default_host}:50000')
    host, sep, port = text.rpartition(':')
    address = (host, int(port)) if sep and port.isdigit() else text
    return address, values.get('--authkey', 'abracadabra').encode(), flags


def connect(manager):
    """manager.connect(); a refused authkey is reported as the C++ clients
    report it: AuthenticationError on stderr, exit code 1."""
    try:
        manager.connect()
    except AuthenticationError as e:
        print('AuthenticationError:', e, file=sys.stderr)
        sys.exit(1)
