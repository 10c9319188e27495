// fuzz/fuzz_pickle.cpp
// libFuzzer target: the unpickler (multiprocessing/reduction/pickle.cpp) on
// arbitrary bytes.  What it checks, per input:
//  - loads() returns a value or throws UnpicklingError; any other exception,
//    a crash, a sanitizer report or a hang fails the run;
//  - the heap used at once stays within 1 MiB + 512 bytes per input byte
//    (pickle.hpp states about 90 bytes per input byte while reading, then at
//    most 8 Objects of 40 bytes per input byte for the value);
//  - a value that loads pickles again (or is refused with PicklingError), and
//    that pickle loads to a value that pickles to the same bytes.
// Nesting: loads() refuses containers deeper than reduction::kMaxDepth
// (1000); it reads opcodes in a loop and recurses, one frame per level, only
// to build the value, so no input can overflow the stack.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz/support.hpp"
#include "multiprocessing/reduction/pickle.hpp"

namespace reduction = multiprocessing::reduction;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::HeapPeak::install();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz::HeapPeak::start();
  multiprocessing::Object value;
  try {
    value = reduction::loads(input);
  } catch (const reduction::UnpicklingError&) {
    fuzz::HeapPeak::check("fuzz_pickle", size, 1 << 20, 512);
    return 0;
  }
  fuzz::HeapPeak::check("fuzz_pickle", size, 1 << 20, 512);

  std::string first;
  try {
    first = reduction::dumps(value, reduction::HIGHEST_PROTOCOL);
  } catch (const reduction::PicklingError&) {
    return 0;  // a value the writer refuses (deeper than it writes): no crash
  }
  std::string second = reduction::dumps(reduction::loads(first), reduction::HIGHEST_PROTOCOL);
  if (first != second) {
    std::fprintf(stderr, "fuzz_pickle: a loaded value does not survive dumps/loads/dumps unchanged\n");
    std::abort();
  }
  return 0;
}
