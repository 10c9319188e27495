// tests/test_word_count.cpp — the grader of the course assignment "word_count"
// (assignments/word_count/): word_count() over a Pool, under every start method,
// checked against a count made here in the test, one word at a time.
#include <cctype>
#include <sstream>

#include "assignments/word_count/word_count.hpp"
#include "support.hpp"

namespace mp_test {

namespace {

/// The expected counts, made serially without the code under test.
word_count::Counts serial_count(const std::vector<std::string>& lines) {
  word_count::Counts counts;
  for (std::string line : lines) {
    for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::istringstream words(line);
    std::string word;
    while (words >> word) ++counts[word];
  }
  return counts;
}

std::vector<std::string> some_lines(int copies) {
  const std::vector<std::string> text = {
      "The quick brown fox jumps over the lazy dog",
      "  a line\twith tabs and   extra  spaces  ",
      "",
      "THE Dog and the FOX",
  };
  std::vector<std::string> lines;
  for (int i = 0; i < copies; ++i) lines.insert(lines.end(), text.begin(), text.end());
  return lines;
}

}  // namespace

class TestWordCount : public WithStartMethod {};

TEST_P(TestWordCount, CountWordsOfOneLine) {
  EXPECT_EQ(word_count::count_words("THE Dog and the\tFOX "), (word_count::Counts{{"and", 1}, {"dog", 1}, {"fox", 1}, {"the", 2}}));
  EXPECT_EQ(word_count::count_words("   "), word_count::Counts{});
}

TEST_P(TestWordCount, MatchesASerialCount) {
  auto lines = some_lines(50);
  auto& ctx = mp::get_context(GetParam());
  EXPECT_EQ(word_count::word_count(lines, ctx, 4), serial_count(lines));
}

TEST_P(TestWordCount, SameCountWithOneOrThreeWorkers) {
  auto lines = some_lines(7);
  auto& ctx = mp::get_context(GetParam());
  auto expected = serial_count(lines);
  EXPECT_EQ(word_count::word_count(lines, ctx, 1), expected);
  EXPECT_EQ(word_count::word_count(lines, ctx, 3), expected);
}

TEST_P(TestWordCount, NoLinesNoWords) {
  auto& ctx = mp::get_context(GetParam());
  EXPECT_EQ(word_count::word_count({}, ctx, 2), word_count::Counts{});
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestWordCount, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace mp_test
