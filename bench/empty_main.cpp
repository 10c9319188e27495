// bench/empty_main.cpp — a C++ program that does nothing: what exec and the
// dynamic loading of a C++ program cost on their own (bench_process's
// BM_RawPosixSpawnEmptyMain, beside BM_RawPosixSpawnSelf and spawn).
int main() { return 0; }
