# examples/os_waitpid.py: seed 002, os.waitpid(-1, os.WNOHANG) reaping two
# forked children: (0, 0) while they run, (pid, 0) for each, then an error.
import os
import time

for i in range(2):
    if os.fork() == 0:
        time.sleep(0.2)
        os._exit(0)

print(os.waitpid(-1, os.WNOHANG), flush=True)
time.sleep(0.1)
print(os.waitpid(-1, os.WNOHANG), flush=True)
time.sleep(1)
print(os.waitpid(-1, os.WNOHANG), flush=True)
print(os.waitpid(-1, os.WNOHANG), flush=True)
try:
    print(os.waitpid(-1, os.WNOHANG))
except OSError as err:
    print(err)
