// tests/test_reduction.cpp — the dynamic value type that arguments travel in,
// and its conversions (reduction.py's value side; pickling is issue 3).
#include "support.hpp"

namespace mp_test {
namespace {

using mp::Object;

/// repr() prints as Python prints.
TEST(TestObject, ReprLikePython) {
  EXPECT_EQ(Object().repr(), "None");
  EXPECT_EQ(Object(true).repr(), "True");
  EXPECT_EQ(Object(-3).repr(), "-3");
  EXPECT_EQ(Object(2.25).repr(), "2.25");
  EXPECT_EQ(Object(1.0).repr(), "1.0");
  EXPECT_EQ(Object(0.1).repr(), "0.1");
  EXPECT_EQ(Object("junk").repr(), "'junk'");
  EXPECT_EQ(Object("it's").repr(), "\"it's\"");
  EXPECT_EQ(Object(mp::Bytes("hi\n")).repr(), "b'hi\\n'");
  EXPECT_EQ(Object(std::vector<int>{0, 1, 2}).repr(), "[0, 1, 2]");
  EXPECT_EQ(Object(Object::Tuple{{1}}).repr(), "(1,)");
  EXPECT_EQ(Object(std::map<std::string, int>{{"a", 1}}).repr(), "{'a': 1}");
  EXPECT_EQ(Object(Object::List{2.25, Object(), "junk"}).repr(), "[2.25, None, 'junk']");
}

/// Conversions back to C++ types, and clear TypeErrors when they do not fit.
TEST(TestObject, Conversions) {
  EXPECT_EQ(Object(7).as<int>(), 7);
  EXPECT_EQ(Object(7).as<double>(), 7.0);
  EXPECT_EQ(Object(true).as<int>(), 1);
  EXPECT_EQ(Object("x").as<std::string>(), "x");
  EXPECT_EQ((Object(std::vector<int>{1, 2}).as<std::vector<long>>()), (std::vector<long>{1, 2}));
  EXPECT_EQ((Object(std::tuple<int, std::string>{1, "a"}).as<std::tuple<int, std::string>>()),
            (std::tuple<int, std::string>{1, "a"}));
  EXPECT_EQ(Object().as<std::optional<int>>(), std::nullopt);
  try {
    Object("x").as<int>();
    ADD_FAILURE() << "no TypeError";
  } catch (const mp::TypeError& e) {
    EXPECT_STREQ(e.what(), "expected int, got str");
  }
  EXPECT_THROW(Object(300).as<std::int8_t>(), mp::ValueError);
}

void two_args(int, std::string) {}

/// Target: a function's arity is known; a lambda takes none or all.
TEST(TestTarget, Forms) {
  mp::Target f(two_args);
  EXPECT_EQ(f.arity(), 2);
  EXPECT_NE(f.function_address(), nullptr);
  int calls = 0;
  mp::Target g([&calls] { ++calls; });
  EXPECT_EQ(g.arity(), 0);
  g({});
  EXPECT_EQ(calls, 1);
  mp::Target h([&calls](const mp::Args& args) { calls += static_cast<int>(args.size()); });
  EXPECT_EQ(h.arity(), -1);
  h({1, 2, 3});
  EXPECT_EQ(calls, 4);
  EXPECT_THROW(f({"not an int", "x"}), mp::TypeError);
}

}  // namespace
}  // namespace mp_test
