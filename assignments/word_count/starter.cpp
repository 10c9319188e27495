// assignments/word_count/starter.cpp — your parallel word count (see README.md here).
//
// Build with this file in place of the library's functions, then grade:
//   cmake --preset debug -DMP_ASSIGNMENT=word_count
//   cmake --build --preset debug -j2
//   ctest --preset debug -L assignment_word_count --output-on-failure
#include "assignments/word_count/word_count.hpp"

#include "multiprocessing/exceptions.hpp"
#include "multiprocessing/pool.hpp"

namespace word_count {

// Python:
//     def count_words(line):
//         counts = {}
//         for word in line.lower().split():
//             counts[word] = counts.get(word, 0) + 1
//         return counts
Counts count_words(std::string line) {
  (void)line;
  throw multiprocessing::NotImplementedError(
      "assignment word_count: count_words is still the starter's. Write it: lower-case the line, "
      "split it on whitespace, count each word (assignments/word_count/README.md)");
}

// Python:
//     with ctx.Pool(processes) as pool:
//         total = Counter()
//         for counts in pool.map(count_words, lines):
//             total.update(counts)
//     return total
//
// ctx.Pool(processes) makes the pool; pool.map(count_words, lines) returns one
// Object per line, each holding a Counts (counts.as<Counts>()).  Close and
// join the pool before returning.
Counts word_count(const std::vector<std::string>& lines, multiprocessing::BaseContext& ctx, int processes) {
  (void)lines, (void)ctx, (void)processes;
  throw multiprocessing::NotImplementedError(
      "assignment word_count: word_count is still the starter's. Write it: a Pool of `processes` "
      "workers maps count_words over the lines, and the parent adds up the dicts "
      "(assignments/word_count/README.md)");
}

}  // namespace word_count
