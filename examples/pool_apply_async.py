# examples/pool_apply_async.py: seed 003's Pool(4).apply_async loop with a
# plain dict: each task fills its own copy; a callback collects the returns.
# The argument is the start method (fork by default).
import multiprocessing as mp
import sys


def test(idx, test_dict):
    test_dict[idx] = idx
    return test_dict


def shown(d, n):
    items = [f'{k}: {v}' for k, v in sorted(d.items())]
    more = ['...'] if len(items) > n else []
    return '{' + ', '.join(items[:n] + more) + '}'


if __name__ == '__main__':
    ctx = mp.get_context(sys.argv[1] if len(sys.argv) > 1 else 'fork')
    temp_dict, results = {}, {}
    pool = ctx.Pool(4)
    for i in range(100):
        pool.apply_async(test, args=(i, temp_dict), callback=results.update)
    pool.close()
    pool.join()
    print('temp_dict after the pool:', shown(temp_dict, 10))
    print(f'results by callback: {len(results)} entries, {shown(results, 5)}')
    each = all(results.get(i) == i for i in range(100))
    print('one result per index, results[i] == i:', each)
