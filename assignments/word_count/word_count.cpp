// assignments/word_count/word_count.cpp — the library's own word count: the
// answer the grader's tests are checked against before a student's file
// replaces it (both functions are MP_ASSIGNABLE, see util.hpp).
#include "assignments/word_count/word_count.hpp"

#include <cctype>
#include <sstream>

#include "multiprocessing/pool.hpp"
#include "multiprocessing/spawn.hpp"
#include "multiprocessing/util.hpp"

namespace word_count {

MP_ASSIGNABLE Counts count_words(std::string line) {
  Counts counts;
  for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::istringstream words(line);
  std::string word;
  while (words >> word) ++counts[word];
  return counts;
}

MP_ASSIGNABLE Counts word_count(const std::vector<std::string>& lines, multiprocessing::BaseContext& ctx,
                                int processes) {
  auto pool = ctx.Pool(processes);
  Counts total;
  for (const multiprocessing::Object& counts : pool.map(count_words, lines)) {  // map, in the workers
    for (const auto& [word, n] : counts.as<Counts>()) total[word] += n;            // reduce, here
  }
  pool.close();
  pool.join();
  return total;
}

}  // namespace word_count

// The workers of a spawn or forkserver pool find count_words by this name.
MP_REGISTER_TARGET(word_count::count_words);
