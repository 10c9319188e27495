// tests/interop_pickle/interop_pickle.cpp — CPython's pickle.loads reads what
// reduction::dumps writes, at every protocol 2..5, for every kind of value,
// including values the byte-identical table cannot hold (mixed-type sets, sets
// whose CPython order differs, globals of other modules, 64 KiB frames).
//
// Usage: interop_pickle <python3> <check_pickle.py>.  Pipes "protocol hex expr"
// lines into the script, which evaluates expr in Python and compares.
// Exits 77 (skipped) when there is no python3.
#include <cmath>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "multiprocessing/reduction/pickle.hpp"

namespace mp = multiprocessing;
using mp::Object;

namespace {

std::string tohex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

Object tuple(std::vector<Object> items) { return Object(Object::Tuple{std::move(items)}); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || argv[1][0] == '\0' || ::access(argv[1], X_OK) != 0) {
    std::fprintf(stderr, "interop_pickle: no python3, skipped\n");
    return 77;
  }
  using L = Object::List;
  using D = Object::Dict;
  // (C++ value, the same value as a Python expression)
  std::vector<std::pair<Object, std::string>> cases = {
      {Object(), "None"},
      {Object(INT64_MIN), "-2**63"},
      {Object(INT64_MAX), "2**63-1"},
      {Object(-HUGE_VAL), "float('-inf')"},
      {Object("h\xc3\xa9llo \xf0\x9f\x90\x8d"), "'h\\u00e9llo \\U0001f40d'"},
      {Object(mp::Bytes(std::string("\x00\x80\xff", 3))), "b'\\x00\\x80\\xff'"},
      {Object(mp::Bytes(std::string(70000, 'q'))), "b'q' * 70000"},
      {Object(std::string(70000, 's')), "'s' * 70000"},
      {Object(mp::Bytearray("ab")), "bytearray(b'ab')"},
      {Object(mp::Bytearray("")), "bytearray()"},
      {Object(Object::Set{1, "a", tuple({2})}), "{1, 'a', (2,)}"},
      {Object(Object::Set{"x", "y", "z", "w"}), "{'x', 'y', 'z', 'w'}"},
      {Object(Object::FrozenSet{}), "frozenset()"},
      {Object(Object::FrozenSet{mp::Bytes("b"), 2.5}), "frozenset({b'b', 2.5})"},
      {Object(D{{"a", L{1, 2}}, {tuple({1, 2, 3, 4}), Object()}}), "{'a': [1, 2], (1, 2, 3, 4): None}"},
      {Object(L{mp::Bytes("a"), mp::Bytes("a"), "a", "latin1"}), "[b'a', b'a', 'a', 'latin1']"},
      {Object(Object::Global{"builtins", "set"}), "set"},
      {Object(Object::Reduced{{"builtins", "range"}, {0, 5}, false, {}}), "range(0, 5)"},
      {Object(Object::Reduced{{"collections", "OrderedDict"}, {Object(L{tuple({"k", 1})})}, false, {}}),
       "__import__('collections').OrderedDict([('k', 1)])"},
      {Object(Object::Reduced{{"multiprocessing.managers", "Token"}, {}, true,
                              {tuple({"dict", "/tmp/mgr.sock", "7f00"})}}),
       "__import__('multiprocessing.managers').managers.Token('dict', '/tmp/mgr.sock', '7f00')"},
  };
  L big;
  for (int i = 0; i < 3000; ++i) big.push_back(Object("item" + std::to_string(i)));
  cases.emplace_back(Object(big), "['item%d' % i for i in range(3000)]");

  std::string command = std::string(argv[1]) + " " + argv[2];
  FILE* python = ::popen(command.c_str(), "w");  // the checker reads our lines on stdin
  if (python == nullptr) {
    std::perror("popen");
    return 1;
  }
  for (int protocol = 2; protocol <= 5; ++protocol) {
    for (const auto& [value, expr] : cases) {
      std::string line = std::to_string(protocol) + " " +
                         tohex(mp::reduction::dumps(value, protocol)) + " " + expr + "\n";
      std::fputs(line.c_str(), python);
    }
  }
  int status = ::pclose(python);  // waits for the checker: no child is left behind
  return (status == 0) ? 0 : 1;
}
