// examples/pool_word_count.cpp — a parallel word count with Pool.map, the
// map-reduce the Python docs and every course build on Pool.  Python:
//   def count_words(line):
//       counts = {}
//       for word in line.lower().split():
//           counts[word] = counts.get(word, 0) + 1
//       return counts
//   with Pool(4) as pool:
//       total = Counter()
//       for counts in pool.map(count_words, lines):   # map: in the workers
//           total.update(counts)                        # reduce: in the parent
//   print(total.most_common(5))
// Each line crosses to a worker pickled, and each dict comes back pickled;
// map() splits the lines into chunks (len / (4 * workers), rounded up).
//
// Run it as `pool_word_count [fork|spawn|forkserver]` (fork by default).
#include <multiprocessing.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace mp = multiprocessing;

/// Python: count_words(line).
std::map<std::string, std::int64_t> count_words(std::string line) {
  std::map<std::string, std::int64_t> counts;
  for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::istringstream words(line);
  std::string word;
  while (words >> word) ++counts[word];
  return counts;
}
MP_REGISTER_TARGET(count_words);

int main(int argc, char** argv) {
  mp::freeze_support();
  auto& ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  // The text: the first lines of the multiprocessing docs, repeated.
  const std::vector<std::string> text = {
      "multiprocessing is a package that supports spawning processes using an API similar to the threading module",
      "the multiprocessing package offers both local and remote concurrency",
      "effectively side-stepping the Global Interpreter Lock by using subprocesses instead of threads",
      "due to this the multiprocessing module allows the programmer to fully leverage multiple processors",
  };
  std::vector<std::string> lines;
  for (int copy = 0; copy < 250; ++copy) lines.insert(lines.end(), text.begin(), text.end());

  auto pool = ctx.Pool(4);
  std::map<std::string, std::int64_t> total;
  for (const mp::Object& counts : pool.map(count_words, lines)) {             // map, in the workers
    for (const auto& [word, n] : counts.as<std::map<std::string, std::int64_t>>()) total[word] += n;  // reduce
  }
  pool.close();
  pool.join();

  std::vector<std::pair<std::string, std::int64_t>> most(total.begin(), total.end());
  std::stable_sort(most.begin(), most.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::printf("%zu lines, %zu distinct words\n", lines.size(), total.size());
  std::printf("[");
  for (std::size_t i = 0; i < 5; ++i) std::printf("%s('%s', %lld)", i ? ", " : "", most[i].first.c_str(), static_cast<long long>(most[i].second));
  std::printf("]\n");
  return 0;
}
