// tests/test_shared_memory.cpp — ports CPython's _TestSharedMemory
// (Lib/test/_test_multiprocessing.py): SharedMemory and ShareableList within one
// process, across processes of each start method (fork, spawn, forkserver, as
// CPython's mixins run them), across a process killed while it held a block,
// and with a Python process attached to a list made here.  Most children
// attach by name, as most of CPython's tests do.
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "support.hpp"

namespace shared_memory_tests {

namespace mp = multiprocessing;
namespace shm = mp::shared_memory;

/// Python: _TestSharedMemory._attach_existing_shmem_then_write, given a name.
void attach_existing_shmem_then_write(std::string name, std::string data) {
  shm::SharedMemory local_sms(name);
  std::copy(data.begin(), data.end(), local_sms.buf().begin());
  local_sms.close();
}

/// The child of ShareableListAcrossProcesses: attach by name (what unpickling
/// a ShareableList does), check the last item, change the fifth.
void attach_list_then_change(std::string name) {
  shm::ShareableList attached = shm::ShareableList::attach(name);
  if (attached[-1] != mp::Object(std::int64_t{9})) throw mp::ValueError("wrong last item");
  attached.set(4, "changed");
  attached.shm().close();
}

/// Python: the same, given the SharedMemory object itself (pickled by name).
void write_through_shared_memory(shm::SharedMemory& sms, std::string data) {
  std::copy(data.begin(), data.end(), sms.buf().begin());
}

}  // namespace shared_memory_tests

MP_REGISTER_TARGET(shared_memory_tests::write_through_shared_memory);
MP_REGISTER_TARGET(shared_memory_tests::attach_existing_shmem_then_write);
MP_REGISTER_TARGET(shared_memory_tests::attach_list_then_change);

namespace mp_test {
namespace {

namespace shm = mp::shared_memory;
using mp::Bytes;
using mp::None;
using mp::Object;
using namespace shared_memory_tests;  // the targets

class TestSharedMemory : public WithStartMethod {};

/// Python: _TestSharedMemory._new_shm_name: a name with the pid in it, so that
/// test runs in parallel do not collide.
std::string new_shm_name(const std::string& prefix) { return prefix + std::to_string(::getpid()); }

std::string bytes_of(const shm::SharedMemory& sms, std::size_t n) {
  return std::string(reinterpret_cast<const char*>(sms.buf().data()), n);
}

/// _TestSharedMemory.test_shared_memory_basics
TEST(TestSharedMemoryOnce, SharedMemoryBasics) {
  std::string name_tsmb = new_shm_name("test01_tsmb");
  shm::SharedMemory sms(name_tsmb, /*create=*/true, 512);

  // Verify attributes are readable.
  EXPECT_EQ(sms.name(), name_tsmb);
  EXPECT_GE(sms.size(), 512u);
  EXPECT_GE(sms.buf().size(), sms.size());

  // Verify __repr__.
  EXPECT_EQ(sms.repr(), "SharedMemory('" + name_tsmb + "', size=512)");

  // Modify contents of shared memory segment through the buffer.
  sms.buf()[0] = 42;
  EXPECT_EQ(sms.buf()[0], 42);

  // Attach to existing shared memory segment.
  shm::SharedMemory also_sms(name_tsmb);
  EXPECT_EQ(also_sms.buf()[0], 42);
  also_sms.close();
  EXPECT_TRUE(also_sms.buf().empty());

  // Attach to existing shared memory segment but specify a new size.
  shm::SharedMemory same_sms(name_tsmb, false, 20 * sms.size());
  EXPECT_LT(same_sms.size(), 20 * sms.size());  // Size was ignored.
  same_sms.close();

  // Creating Shared Memory Segment with -ve size.
  EXPECT_THROW(shm::SharedMemory(std::nullopt, true, -2), mp::ValueError);
  // Attaching Shared Memory Segment without a name.
  EXPECT_THROW(shm::SharedMemory(std::nullopt, false), mp::ValueError);

  // Posix Shared Memory can only be unlinked once.
  std::string name_dblunlink = new_shm_name("test01_dblunlink");
  shm::SharedMemory sms_uno(name_dblunlink, true, 5000);
  EXPECT_GE(sms_uno.size(), 5000u);
  shm::SharedMemory sms_duo(name_dblunlink);
  sms_duo.unlink();  // First shm_unlink() call.
  sms_duo.close();
  sms_uno.close();
  EXPECT_THROW(sms_uno.unlink(), mp::FileNotFoundError);  // A second shm_unlink() call is bad.

  // Attempting to create a new shared memory segment with a name that is
  // already in use triggers an exception.
  EXPECT_THROW(shm::SharedMemory(name_tsmb, true, 512), mp::FileExistsError);

  // Attempting to attach to an existing shared memory segment when no segment
  // exists with the supplied name triggers an exception.
  try {
    shm::SharedMemory nonexisting_sms("test01_notthere");
    ADD_FAILURE() << "attached to a segment that does not exist";
  } catch (const mp::FileNotFoundError& e) {
    EXPECT_EQ(e.errno_value(), ENOENT);
  }

  sms.close();
  sms.unlink();
}

/// _TestSharedMemory.test_shared_memory_basics (the part with generated
/// names): names are "psm_" and 8 hex digits, different each time.
TEST(TestSharedMemoryOnce, SharedMemoryGeneratedNames) {
  shm::SharedMemory a(std::nullopt, true, 1), b(std::nullopt, true, 1);
  for (const shm::SharedMemory* s : {&a, &b}) {
    EXPECT_EQ(s->name().size(), 12u) << s->name();
    EXPECT_EQ(s->name().rfind("psm_", 0), 0u) << s->name();
    EXPECT_EQ(s->name().find_first_not_of("0123456789abcdef", 4), std::string::npos) << s->name();
    EXPECT_TRUE(shm_file_exists(s->name()));
  }
  EXPECT_NE(a.name(), b.name());
  a.unlink();
  b.unlink();
  EXPECT_FALSE(shm_file_exists(a.name()));
}

/// _TestSharedMemory.test_shared_memory_recreate: when _make_filename returns
/// the name of a block that exists, creation tries the next name.  CPython
/// patches _make_filename with unittest.mock; it is a replaceable function
/// object here, so the test does the same.
TEST(TestSharedMemoryOnce, SharedMemoryRecreate) {
  const std::vector<std::string> names = {"/" + new_shm_name("test03_fn"), "/" + new_shm_name("test04_fn")};
  auto saved = shm::_make_filename;
  std::size_t next = 0;
  // Python: mock_make_filename.side_effect = names
  shm::_make_filename = [&] { return names.at(next++); };
  shm::SharedMemory shm1(std::nullopt, true, 1);
  EXPECT_EQ("/" + shm1.name(), names[0]);
  next = 0;
  shm::SharedMemory shm2(std::nullopt, true, 1);
  EXPECT_EQ("/" + shm2.name(), names[1]);
  EXPECT_EQ(next, 2u);
  shm::_make_filename = saved;
  shm1.unlink();
  shm2.unlink();
}

/// _TestSharedMemory.test_shared_memory_pickle_unpickle: dumps and loads in
/// this process, for every protocol the port writes (2 to 5; it does not
/// write 0 and 1): the copy is another mapping of the same block.
TEST(TestSharedMemoryOnce, SharedMemoryPickleUnpickle) {
  auto bytes = [](const shm::SharedMemory& m) { return bytes_of(m, 6); };
  auto put = [](shm::SharedMemory& m, const std::string& s) { std::copy(s.begin(), s.end(), m.buf().begin()); };
  for (int proto = 2; proto <= mp::reduction::HIGHEST_PROTOCOL; ++proto) {
    SCOPED_TRACE("proto=" + std::to_string(proto));
    shm::SharedMemory sms(std::nullopt, true, 512);
    put(sms, "pickle");
    // Test pickling
    std::string pickled_sms = mp::reduction::dumps(Object(sms), proto);
    // Test unpickling
    shm::SharedMemory sms2 = mp::reduction::loads(pickled_sms).as<shm::SharedMemory>();
    EXPECT_EQ(sms.name(), sms2.name());
    EXPECT_EQ(bytes(sms), "pickle");
    EXPECT_EQ(bytes(sms2), "pickle");
    // Test that unpickled version is still the same SharedMemory
    put(sms, "newval");
    EXPECT_EQ(bytes(sms), "newval");
    EXPECT_EQ(bytes(sms2), "newval");
    put(sms2, "oldval");
    EXPECT_EQ(bytes(sms), "oldval");
    EXPECT_EQ(bytes(sms2), "oldval");
    sms.unlink();
  }
}

/// _TestSharedMemory.test_shared_memory_pickle_unpickle_dead_object: once the
/// block is closed and unlinked, unpickling it is FileNotFoundError.
TEST(TestSharedMemoryOnce, SharedMemoryPickleUnpickleDeadObject) {
  for (int proto = 2; proto <= mp::reduction::HIGHEST_PROTOCOL; ++proto) {
    SCOPED_TRACE("proto=" + std::to_string(proto));
    shm::SharedMemory sms(std::nullopt, true, 512);
    std::copy_n("pickle", 6, sms.buf().begin());
    std::string pickled_sms = mp::reduction::dumps(Object(sms), proto);
    // Now, we are going to kill the original object.
    // So, unpickled one won't be able to attach to it.
    sms.close();
    sms.unlink();
    EXPECT_THROW(mp::reduction::loads(pickled_sms).as<shm::SharedMemory>(), mp::FileNotFoundError);
  }
}

/// _TestSharedMemory.test_invalid_shared_memory_cration
TEST(TestSharedMemoryOnce, InvalidSharedMemoryCreation) {
  auto message = [](std::int64_t size) {
    try {
      shm::SharedMemory sms_invalid(std::nullopt, true, size);
    } catch (const mp::ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no ValueError");
  };
  // Negative size, size 0, no size argument.
  EXPECT_EQ(message(-1), "'size' must be a positive integer");
  EXPECT_EQ(message(0), "'size' must be a positive number different from zero");
  try {
    shm::SharedMemory sms_invalid(std::nullopt, true);
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "'size' must be a positive number different from zero");
  }
  try {
    shm::SharedMemory sms_invalid(std::nullopt, false, 10);
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "'name' can only be None if create=True");
  }
}

/// Not in CPython: a block larger than /dev/shm can hold fails at creation
/// with ENOSPC (posix_fallocate), instead of a SIGBUS at the first touch of a
/// page, and leaves no file behind.
TEST(TestSharedMemoryOnce, TooLargeForDevShmIsENOSPC) {
  struct statvfs st {};
  ASSERT_EQ(::statvfs("/dev/shm", &st), 0);
  if (st.f_blocks == 0) GTEST_SKIP() << "/dev/shm has no size limit";
  // More than the whole file system, so certainly more than is free; the
  // kernel refuses that at once, without touching memory.
  std::int64_t size = static_cast<std::int64_t>(st.f_blocks) * static_cast<std::int64_t>(st.f_frsize) + (1 << 20);
  ASSERT_GT(size, static_cast<std::int64_t>(st.f_bavail) * static_cast<std::int64_t>(st.f_frsize));
  std::string name = new_shm_name("test01_enospc");
  try {
    shm::SharedMemory sms(name, true, size);
    ADD_FAILURE() << "created " << sms.repr();
    sms.unlink();
  } catch (const mp::OSError& e) {
    EXPECT_EQ(e.errno_value(), ENOSPC) << e.what();
    EXPECT_EQ(e.call(), "posix_fallocate");
  }
  EXPECT_FALSE(shm_file_exists(name));
}

/// _TestSharedMemory.test_shared_memory_across_processes
TEST_P(TestSharedMemory, SharedMemoryAcrossProcesses) {
  shm::SharedMemory sms(std::nullopt, true, 512);

  // Verify remote attachment to existing block by name is working.
  std::string name = sms.name();
  mp::Process p({.target = attach_existing_shmem_then_write, .args = {name, "howdy"}, .daemon = true});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(bytes_of(sms, 5), "howdy");

  // Python also pickles the object itself (SharedMemory.__reduce__: by
  // name); under fork the child gets the same mapping.
  mp::Process q({.target = write_through_shared_memory, .args = {sms, "HELLO"}, .daemon = true});
  q.start();
  join_process(q);
  EXPECT_EQ(q.exitcode(), 0);
  EXPECT_EQ(bytes_of(sms, 5), "HELLO");

  sms.close();
  sms.unlink();
}

/// _TestSharedMemory.test_shared_memory_ShareableList_basics
TEST(TestSharedMemoryOnce, ShareableListBasics) {
  shm::ShareableList sl({"howdy", Bytes("HoWdY"), -273.154, std::int64_t{100}, None{}, true, std::int64_t{42}});

  // Verify __repr__.
  EXPECT_EQ(sl.repr(), "ShareableList(['howdy', b'HoWdY', -273.154, 100, None, True, 42], name='" +
                           sl.shm().name() + "')");

  // Index Out of Range (get), (set).
  EXPECT_THROW(sl[7], mp::IndexError);
  EXPECT_THROW(sl.set(7, std::int64_t{2}), mp::IndexError);

  // Assign value without format change (str -> str).
  std::string current_format = sl._get_packing_format(0);
  sl.set(0, "howdy");
  EXPECT_EQ(current_format, sl._get_packing_format(0));

  // Verify attributes are readable.
  EXPECT_EQ(sl.format(), "8s8sdqxxxxxx?xxxxxxxx?q");

  // Exercise len().
  EXPECT_EQ(sl.size(), 7u);

  // Exercise index().
  try {
    sl.index("100");
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "'100' not in this container");
  }
  EXPECT_EQ(sl.index(std::int64_t{100}), 3u);

  // Exercise retrieving individual values.
  EXPECT_EQ(sl[0], Object("howdy"));
  EXPECT_EQ(sl[-2], Object(true));

  // Exercise iterability.
  EXPECT_EQ(sl.items(), (std::vector<Object>{"howdy", Bytes("HoWdY"), -273.154, std::int64_t{100}, None{}, true,
                                             std::int64_t{42}}));

  // Exercise modifying individual values.
  sl.set(3, std::int64_t{42});
  EXPECT_EQ(sl[3], Object(std::int64_t{42}));
  sl.set(4, "some");  // Change type at a given position.
  EXPECT_EQ(sl[4], Object("some"));
  EXPECT_EQ(sl.format(), "8s8sdq8sxxxxxxx?q");
  try {
    sl.set(4, "far too many");
    ADD_FAILURE() << "no ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_STREQ(e.what(), "bytes/str item exceeds available storage");
  }
  EXPECT_EQ(sl[4], Object("some"));
  sl.set(0, "encod\xc3\xa9s");  // Exactly 8 bytes of UTF-8 data
  EXPECT_EQ(sl[0], Object("encod\xc3\xa9s"));
  EXPECT_EQ(sl[1], Object(Bytes("HoWdY")));  // no spillage
  EXPECT_THROW(sl.set(0, "encod\xc3\xa9\x65s"), mp::ValueError);  // Exactly 9 bytes of UTF-8 data
  EXPECT_EQ(sl[1], Object(Bytes("HoWdY")));
  EXPECT_THROW(sl.set(1, Bytes("123456789")), mp::ValueError);
  EXPECT_EQ(sl[1], Object(Bytes("HoWdY")));

  // Exercise count().
  EXPECT_EQ(sl.count(std::int64_t{42}), 2u);
  EXPECT_EQ(sl.count(Bytes("HoWdY")), 1u);
  EXPECT_EQ(sl.count(Bytes("adios")), 0u);

  // Exercise creating a duplicate.
  std::string name_duplicate = new_shm_name("test03_duplicate");
  {
    shm::ShareableList sl_copy(sl.items(), name_duplicate);
    EXPECT_NE(sl.shm().name(), sl_copy.shm().name());
    EXPECT_EQ(name_duplicate, sl_copy.shm().name());
    EXPECT_EQ(sl.items(), sl_copy.items());
    // CPython sizes a new str slot by its length in characters: 'encodés'
    // (7) gets 8 bytes there and "8s8sdq8sxxxxxxx?q" here is equal.  The
    // port sizes it by its UTF-8 octets (8), which take a 16-byte slot.
    EXPECT_EQ(sl.format(), "8s8sdq8sxxxxxxx?q");
    EXPECT_EQ(sl_copy.format(), "16s8sdq8sxxxxxxx?q");
    sl_copy.set(-1, std::int64_t{77});
    EXPECT_EQ(sl_copy[-1], Object(std::int64_t{77}));
    EXPECT_NE(sl[-1], Object(std::int64_t{77}));
    sl_copy.shm().close();
    sl_copy.shm().unlink();
  }

  // Obtain a second handle on the same ShareableList.
  shm::ShareableList sl_tethered = shm::ShareableList::attach(sl.shm().name());
  EXPECT_EQ(sl.shm().name(), sl_tethered.shm().name());
  sl_tethered.set(-1, std::int64_t{880});
  EXPECT_EQ(sl[-1], Object(std::int64_t{880}));
  sl_tethered.shm().close();

  sl.shm().close();
  sl.shm().unlink();

  // Exercise creating an empty ShareableList.
  shm::ShareableList empty_sl;
  EXPECT_EQ(empty_sl.size(), 0u);
  EXPECT_EQ(empty_sl.format(), "");
  EXPECT_EQ(empty_sl.count("any"), 0u);
  EXPECT_THROW(empty_sl.index(None{}), mp::ValueError);
  empty_sl.shm().close();
  empty_sl.shm().unlink();
}

/// Not in CPython: a non-ASCII str is stored whole.  CPython 3.11 sizes the
/// slot by characters (5 here, so 8 bytes) and struct silently cuts the 10
/// octets of UTF-8 to 8; the port sizes it by octets.
TEST(TestSharedMemoryOnce, ShareableListKeepsNonAsciiStrings) {
  std::string text = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";  // "ééééé"
  shm::ShareableList sl(std::vector<Object>{text});
  EXPECT_EQ(sl[0], Object(text));
  EXPECT_EQ(sl.format(), "16s");
  sl.shm().close();
  sl.shm().unlink();
}

/// _TestSharedMemory.test_shared_memory_ShareableList_basics: a type
/// ShareableList cannot hold is refused before any block is made.
TEST(TestSharedMemoryOnce, ShareableListRefusesOtherTypes) {
  EXPECT_THROW(shm::ShareableList({std::int64_t{1}, Object(Object::List{})}), mp::TypeError);
}

/// _TestSharedMemory.test_shared_memory_ShareableList_pickling, by name:
/// a child attaches to the list by name (what unpickling does) and both see
/// each other's writes.
TEST_P(TestSharedMemory, ShareableListAcrossProcesses) {
  std::vector<Object> range;
  for (std::int64_t i = 0; i < 10; ++i) range.emplace_back(i);
  shm::ShareableList sl(range);
  std::string name = sl.shm().name();
  mp::Process p({.target = attach_list_then_change, .args = {name}});
  p.start();
  join_process(p);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(sl[4], Object("changed"));
  sl.shm().close();
  sl.shm().unlink();
}

/// _TestSharedMemory.test_shared_memory_ShareableList_pickling_dead_object
TEST(TestSharedMemoryOnce, ShareableListDeadObject) {
  shm::ShareableList sl({std::int64_t{1}});
  std::string name = sl.shm().name();
  sl.shm().close();
  sl.shm().unlink();
  EXPECT_THROW(shm::ShareableList::attach(name), mp::FileNotFoundError);
}

/// The layout is CPython's: a Python process attaches to a list made here by
/// name, reads every item, writes one, and we read what it wrote.
TEST_P(TestSharedMemory, ShareableListReadByPython) {
  if (std::system("python3 -c 'import multiprocessing.shared_memory' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no python3";
  }
  shm::ShareableList sl({"howdy", Bytes("HoWdY"), -273.154, std::int64_t{100}, None{}, true, std::int64_t{-42}});
  // Python 3.11 registers every block it attaches to with its own tracker,
  // which would unlink ours when Python exits (gh-82300): the script
  // unregisters it again.
  std::string script =
      "import sys\n"
      "from multiprocessing import shared_memory, resource_tracker\n"
      "sl = shared_memory.ShareableList(name=sys.argv[1])\n"
      "resource_tracker.unregister(sl.shm._name, 'shared_memory')\n"
      "print(repr(list(sl)))\n"
      "print(sl.format)\n"
      "sl[2] = 'python'\n"
      "sl[3] = 2**40\n"
      "sl.shm.close()\n";
  std::string command = "python3 -c \"" + script + "\" " + sl.shm().name();
  std::FILE* out = ::popen(command.c_str(), "r");
  ASSERT_NE(out, nullptr);
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, out) != nullptr) output += buffer;
  int status = ::pclose(out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "['howdy', b'HoWdY', -273.154, 100, None, True, -42]\n8s8sdqxxxxxx?xxxxxxxx?q\n");
  EXPECT_EQ(sl[2], Object("python"));  // a str in the float's 8-byte slot
  EXPECT_EQ(sl[3], Object(std::int64_t{1} << 40));
  EXPECT_EQ(sl.format(), "8s8s8sqxxxxxx?xxxxxxxx?q");
  sl.shm().close();
  sl.shm().unlink();
}

/// The other way round: a Python process makes a list, and we attach to it by
/// name, read it, and unlink it.  (Our tracker never saw that name; the
/// UNREGISTER that unlink() sends is ignored, see resource_tracker.cpp.)
TEST_P(TestSharedMemory, ShareableListMadeByPython) {
  if (std::system("python3 -c 'import multiprocessing.shared_memory' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no python3";
  }
  // The script unregisters the block from its own tracker, or that tracker
  // would unlink it when Python exits.
  std::string script =
      "from multiprocessing import shared_memory, resource_tracker\n"
      "sl = shared_memory.ShareableList([1, -2.5, True, None, 'caf\\u00e9', b'by\\x00tes'])\n"
      "resource_tracker.unregister(sl.shm._name, 'shared_memory')\n"
      "print(sl.shm.name)\n"
      "sl.shm.close()\n";
  std::string command = "python3 -c \"" + script + "\"";
  std::FILE* out = ::popen(command.c_str(), "r");
  ASSERT_NE(out, nullptr);
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, out) != nullptr) output += buffer;
  int status = ::pclose(out);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  ASSERT_FALSE(output.empty());
  std::string name = output.substr(0, output.find('\n'));
  shm::ShareableList sl = shm::ShareableList::attach(name);
  EXPECT_EQ(sl.repr(), "ShareableList([1, -2.5, True, None, 'caf\xc3\xa9', b'by\\x00tes'], name='" + name + "')");
  EXPECT_EQ(sl.format(), "qdxxxxxxx?xxxxxx?x8s8s");
  sl.shm().close();
  sl.shm().unlink();
  EXPECT_FALSE(shm_file_exists(name));
}

/// Run only by SharedMemoryCleanedAfterProcessTermination, in a copy of the
/// test binary: create a block, report its name, wait to be killed.
TEST(TestSharedMemoryHelper, DISABLED_CreateAndWait) {
  shm::SharedMemory sm(std::nullopt, true, 10);
  std::printf("SHM=%s\n", sm.name().c_str());
  std::fflush(stdout);
  for (;;) ::pause();
}

/// _TestSharedMemory.test_shared_memory_cleaned_after_process_termination:
/// killing a process that holds a block abruptly does not leak the block: its
/// own resource tracker unlinks it, and says so.
TEST_P(TestSharedMemory, SharedMemoryCleanedAfterProcessTermination) {
  HelperProcess p("TestSharedMemoryHelper.DISABLED_CreateAndWait");
  std::string name = p.read_value("SHM=");
  EXPECT_TRUE(shm_file_exists(name));
  p.kill_and_wait(SIGTERM);
  // stderr ends when the helper's tracker has exited, after its cleanup.
  bool eof = false;
  std::string err = p.read_stderr_until_eof(30.0, &eof);
  EXPECT_TRUE(eof) << "the helper's tracker did not exit within 30 s";
  EXPECT_TRUE(wait_until([&] { return !shm_file_exists(name); }))
      << "A SharedMemory segment was leaked after a process was abruptly terminated";
  EXPECT_NE(err.find("resource_tracker: There appear to be 1 leaked shared_memory objects to clean up at shutdown"),
            std::string::npos)
      << err;
}

std::vector<Object> range_list(std::int64_t n) {
  std::vector<Object> items;
  for (std::int64_t i = 0; i < n; ++i) items.emplace_back(i);
  return items;
}

/// _TestSharedMemory.test_shared_memory_SharedMemoryManager_basics: the
/// blocks made through a SharedMemoryManager can be attached to by name while
/// it runs, and are gone from /dev/shm once it shut down, with `with` too.
TEST_P(TestSharedMemory, SharedMemoryManagerBasics) {
  mp::managers::SharedMemoryManager smm1;
  EXPECT_THROW(smm1.SharedMemory(9), mp::ValueError);  // Fails if SharedMemoryServer not started
  smm1.start();
  std::vector<shm::ShareableList> lol;
  for (std::int64_t i = 5; i < 10; ++i) lol.push_back(smm1.ShareableList(range_list(i)));
  std::vector<shm::SharedMemory> lom;
  for (std::int64_t j = 32; j < 128; j += 16) lom.push_back(smm1.SharedMemory(j));
  shm::ShareableList doppleganger_list0 = shm::ShareableList::attach(lol[0].shm().name());
  EXPECT_EQ(doppleganger_list0.size(), 5u);
  shm::SharedMemory doppleganger_shm0(lom[0].name());
  EXPECT_GE(doppleganger_shm0.buf().size(), 32u);
  std::string held_name = lom[0].name();
  smm1.shutdown();
  // No longer there to be attached to again.
  EXPECT_THROW(shm::SharedMemory absent_shm(held_name), mp::FileNotFoundError);
  for (const auto& sl : lol) EXPECT_FALSE(shm_file_exists(sl.shm().name())) << sl.shm().name();
  for (const auto& sm : lom) EXPECT_FALSE(shm_file_exists(sm.name())) << sm.name();

  mp::managers::SharedMemoryManager smm2;
  {
    auto with = smm2.enter();
    shm::ShareableList sl = smm2.ShareableList({"h", "o", "w", "d", "y"});  // Python: ShareableList("howdy")
    shm::SharedMemory sm = smm2.SharedMemory(128);
    held_name = sl.shm().name();
    EXPECT_EQ(sl[4], Object("y"));
  }
  EXPECT_THROW(shm::ShareableList::attach(held_name), mp::FileNotFoundError);
}

/// _TestSharedMemory.test_shared_memory_SharedMemoryServer_ignores_sigint
/// (bpo-36368): SIGINT does not stop the server, which goes on handing out
/// blocks.  (Python's last check, that this process still gets
/// KeyboardInterrupt, has no C++ twin: SIGINT would end the test binary.)
TEST_P(TestSharedMemory, SharedMemoryServerIgnoresSigint) {
  mp::managers::SharedMemoryManager smm;
  smm.start();
  shm::ShareableList sl = smm.ShareableList(range_list(10));
  // kill: the Ctrl-C a terminal sends to the whole foreground group.
  ASSERT_EQ(::kill(*smm._process()->pid(), SIGINT), 0);
  shm::ShareableList sl2 = smm.ShareableList(range_list(10));
  EXPECT_EQ(sl2[9], Object(std::int64_t{9}));
  EXPECT_TRUE(smm._process()->is_alive());
  smm.shutdown();
  EXPECT_EQ(smm._process()->exitcode(), 0);
  EXPECT_FALSE(shm_file_exists(sl.shm().name()));
  EXPECT_FALSE(shm_file_exists(sl2.shm().name()));
}

/// SharedMemoryServer's own requests, as a client sends them on a control
/// connection: list_segments, release_segment (which unlinks at once), and an
/// unknown name refused while the server goes on serving.
TEST_P(TestSharedMemory, SharedMemoryServerRequests) {
  mp::managers::SharedMemoryManager smm;
  smm.start();
  shm::SharedMemory a = smm.SharedMemory(16);
  shm::ShareableList b = smm.ShareableList(range_list(3));
  auto request = [&](const std::string& name, const mp::Args& args) {
    auto conn = mp::connection::Client(*smm.address(), std::nullopt, smm._authkey());
    return mp::managers::dispatch(conn, Object(), name, args);
  };
  EXPECT_EQ(request("list_segments", {}), Object(Object::List{a.name(), b.shm().name()}));
  request("release_segment", {a.name()});
  EXPECT_FALSE(shm_file_exists(a.name()));
  EXPECT_EQ(request("list_segments", {}), Object(Object::List{b.shm().name()}));
  EXPECT_THROW(request("release_segment", {a.name()}), mp::managers::RemoteError);  // no longer tracked
  EXPECT_THROW(request("no_such_request", {}), mp::managers::RemoteError);
  EXPECT_TRUE(shm_file_exists(b.shm().name()));
  smm.shutdown();
  EXPECT_FALSE(shm_file_exists(b.shm().name()));
}

/// Run only by SharedMemoryManagerReusesResourceTracker, in a copy of the
/// test binary: a SharedMemoryManager under each start method makes a
/// ShareableList and shuts down.
TEST(TestSharedMemoryHelper, DISABLED_SharedMemoryManagerShareableList) {
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    mp::managers::SharedMemoryManager smm(std::nullopt, std::nullopt, "pickle", &mp::get_context(method));
    smm.start();
    shm::ShareableList sl = smm.ShareableList(range_list(10));
    smm.shutdown();
  }
  std::printf("DONE=1\n");
  std::fflush(stdout);
}

/// _TestSharedMemory.test_shared_memory_SharedMemoryManager_reuses_resource_tracker
/// (bpo-36867): the manager's server reports to its parent's resource
/// tracker, so when the server unlinks the blocks at shutdown the parent's
/// tracker does not warn, at its exit, that they leaked.
TEST(TestSharedMemoryManager, SharedMemoryManagerReusesResourceTracker) {
  HelperProcess p("TestSharedMemoryHelper.DISABLED_SharedMemoryManagerShareableList");
  EXPECT_EQ(p.read_value("DONE="), "1");
  // stderr ends when the helper and its tracker have exited.
  bool eof = false;
  std::string err = p.read_stderr_until_eof(60.0, &eof);
  EXPECT_TRUE(eof) << "the helper's tracker did not exit within 60 s";
  EXPECT_EQ(err.find("resource_tracker"), std::string::npos) << err;
  p.kill_and_wait(SIGKILL);  // reaps the helper, which has exited
}

INSTANTIATE_TEST_SUITE_P(WithProcesses, TestSharedMemory, ::testing::ValuesIn(start_methods()), method_name);

}  // namespace
}  // namespace mp_test
