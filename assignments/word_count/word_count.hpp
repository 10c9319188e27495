// assignments/word_count/word_count.hpp — the parallel word count with Pool.map
// (see README.md here).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "multiprocessing/context.hpp"

namespace word_count {

/// Word -> how many times it occurs.
using Counts = std::map<std::string, std::int64_t>;

/// Python: count_words(line): the line lower-cased and split on whitespace,
/// each word counted.  Runs in a pool worker.
Counts count_words(std::string line);

/// Python:
///     with ctx.Pool(processes) as pool:
///         total = Counter()
///         for counts in pool.map(count_words, lines):   # map: in the workers
///             total.update(counts)                        # reduce: here
///         return total
Counts word_count(const std::vector<std::string>& lines, multiprocessing::BaseContext& ctx, int processes);

}  // namespace word_count
