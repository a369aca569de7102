// Output files: destinations checked before any work, several outputs committed together,
// mode and owner kept, temporary files removed on errors and on SIGINT/SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "dfss/errors.h"
#include "io/atomic_file.h"
#include "io/npz.h"
#include "io/output_set.h"
#include "io/output_target.h"
#include "io/temporary_cleanup.h"
#include "temp_dir.h"

namespace dfss::io {
namespace {

using test::read_file;
using test::TempDir;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// The names in `dir`, sorted.
std::vector<std::string> listing(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

template <typename Exception, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(OutputFiles, NonRegularDestinationsAreRefusedAndLeftAlone) {
  const TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string message = message_of<IoError>([&] { write_file_atomically(fifo, {bytes_of("x")}); });
  EXPECT_EQ(message,
            fifo + ": not a regular file (a FIFO); dfss writes outputs only to regular files");
  struct stat status {};
  ASSERT_EQ(::lstat(fifo.c_str(), &status), 0);
  EXPECT_TRUE(S_ISFIFO(status.st_mode));

  // A character device of our own (the null device's numbers), never /dev/null itself.
  const std::string device = dir.file("null");
  if (::mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    message = message_of<IoError>([&] { check_output(device, "--out"); });
    EXPECT_TRUE(contains(message, "--out " + device + ": not a regular file (a character device)"))
        << message;
    ASSERT_EQ(::lstat(device.c_str(), &status), 0);
    EXPECT_TRUE(S_ISCHR(status.st_mode));
  }

  message = message_of<IoError>([&] { check_output(dir.path().string(), "--out"); });
  EXPECT_TRUE(contains(message, ": is a directory")) << message;
  message = message_of<IoError>([&] { check_output(dir.file("sub/"), "--out"); });
  EXPECT_TRUE(contains(message, ": expected a file name, not a directory")) << message;
  message = message_of<IoError>([&] { check_output(dir.file("missing/o.npy"), "--out"); });
  EXPECT_EQ(message, "--out " + dir.file("missing/o.npy") + ": directory '" + dir.file("missing") +
                         "' does not exist");
  // Nothing was created next to them.
  EXPECT_EQ(listing(dir).size(), std::filesystem::exists(device) ? 2u : 1u);
}

TEST(OutputFiles, SymbolicLinksAreWrittenThrough) {
  const TempDir dir;
  std::filesystem::create_directory(dir.file("real"));
  const std::string target = dir.file("real/data.bin"), link = dir.file("link.bin");
  write_text(target, "old");
  std::filesystem::create_symlink("real/data.bin", link);
  write_file_atomically(link, {bytes_of("new")});
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(read_file(target), "new");

  // A dangling link names the file to create.
  const std::string dangling = dir.file("dangling.bin");
  std::filesystem::create_symlink("real/created.bin", dangling);
  write_file_atomically(dangling, {bytes_of("created")});
  EXPECT_TRUE(std::filesystem::is_symlink(dangling));
  EXPECT_EQ(read_file(dir.file("real/created.bin")), "created");

  const std::string loop = dir.file("loop");
  std::filesystem::create_symlink("loop", loop);
  EXPECT_TRUE(contains(message_of<IoError>([&] { check_output(loop); }), "symbolic links"));
}

TEST(OutputFiles, ModeAndOwnerOfAReplacedFileAreKept) {
  const TempDir dir;
  const std::string path = dir.file("kept.bin");
  write_text(path, "old");
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  const bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::chown(path.c_str(), 1234, 5678), 0);
  }
  write_file_atomically(path, {bytes_of("new")});
  EXPECT_EQ(read_file(path), "new");
  struct stat status {};
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0640u);
  if (root) {
    EXPECT_EQ(status.st_uid, 1234u);
    EXPECT_EQ(status.st_gid, 5678u);
  }

  // A new file gets the umask's permissions, not mkstemp's 0600.
  const mode_t mask = ::umask(022);
  write_file_atomically(dir.file("new.bin"), {bytes_of("x")});
  ::umask(mask);
  ASSERT_EQ(::stat(dir.file("new.bin").c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0644u);
}

TEST(OutputFiles, AFileWithSeveralHardLinksIsRefused) {
  const TempDir dir;
  const std::string path = dir.file("a.bin"), other = dir.file("b.bin");
  write_text(path, "old");
  ASSERT_EQ(::link(path.c_str(), other.c_str()), 0);
  const std::string message =
      message_of<IoError>([&] { write_file_atomically(path, {bytes_of("new")}); });
  EXPECT_TRUE(contains(message, path + ": has 2 hard links")) << message;
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(read_file(other), "old");
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"a.bin", "b.bin"}));
}

TEST(OutputFiles, ALongValidNameWorks) {
  const TempDir dir;
  // 249 bytes: a temporary name made by appending a suffix would pass NAME_MAX (255).
  const std::string path = dir.file(std::string(245, 'n') + ".npy");
  write_file_atomically(path, {bytes_of("long")});
  EXPECT_EQ(read_file(path), "long");
  EXPECT_EQ(listing(dir).size(), 1u);
}

TEST(OutputFiles, TheSameFileCannotBeTwoOutputs) {
  const TempDir dir;
  OutputSet outputs;
  outputs.add(dir.file("o.npy"), "--out");
  std::string message =
      message_of<IoError>([&] { outputs.add(dir.path().string() + "/./o.npy", "--scores-out"); });
  EXPECT_TRUE(contains(message, "--scores-out " + dir.path().string() +
                                    "/./o.npy: names the same file as --out " + dir.file("o.npy")))
      << message;

  // Two names of one existing file: a link to it.
  write_text(dir.file("s.npz"), "old");
  std::filesystem::create_symlink("s.npz", dir.file("alias.npz"));
  outputs.add(dir.file("s.npz"), "--scores-out");
  message = message_of<IoError>([&] { outputs.add(dir.file("alias.npz"), "--json"); });
  EXPECT_TRUE(contains(message, "names the same file as --scores-out")) << message;
}

TEST(OutputFiles, OutputsCommitTogetherOrNotAtAll) {
  const TempDir dir;
  const std::string a = dir.file("a.bin"), b = dir.file("b.bin");
  write_text(a, "old a");
  {
    // The second output is never written: an exception in between.
    OutputSet outputs;
    const size_t ia = outputs.add(a), ib = outputs.add(b);
    outputs.file(ia).write(bytes_of("new a"));
    (void)ib;
  }
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"a.bin"}));
  EXPECT_EQ(read_file(a), "old a");

  {
    // A destination that turned into a directory during the work fails the commit
    // before anything is replaced.
    OutputSet outputs;
    const size_t ia = outputs.add(a), ib = outputs.add(b);
    outputs.file(ia).write(bytes_of("new a"));
    outputs.file(ib).write(bytes_of("new b"));
    std::filesystem::create_directory(b);
    EXPECT_THROW(outputs.commit(), IoError);
  }
  EXPECT_EQ(read_file(a), "old a");
  EXPECT_TRUE(std::filesystem::is_directory(b));
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"a.bin", "b.bin"}));
  std::filesystem::remove(b);

  OutputSet outputs;
  const size_t ia = outputs.add(a), ib = outputs.add(b);
  outputs.file(ia).write(bytes_of("new a"));
  outputs.file(ib).write(bytes_of("new b"));
  outputs.commit();
  EXPECT_EQ(read_file(a), "new a");
  EXPECT_EQ(read_file(b), "new b");
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"a.bin", "b.bin"}));
}

TEST(OutputFiles, AFailedRenamePutsBackTheFilesAlreadyReplaced) {
  const TempDir dir;
  const std::string a = dir.file("a.bin"), b = dir.file("b.bin");
  write_text(a, "old a");
  write_text(b, "old b");
  // An immutable file cannot be replaced, even by root: the second rename fails.
  if (std::system(("chattr +i '" + b + "' 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "chattr +i is not available here";
  }
  struct Unfreeze {
    std::string path;
    ~Unfreeze() { (void)!std::system(("chattr -i '" + path + "'").c_str()); }
  } unfreeze{b};
  OutputSet outputs;
  const size_t ia = outputs.add(a, "--out"), ib = outputs.add(b, "--scores-out");
  outputs.file(ia).write(bytes_of("new a"));
  outputs.file(ib).write(bytes_of("new b"));
  const std::string message = message_of<IoError>([&] { outputs.commit(); });
  EXPECT_TRUE(contains(message, "--scores-out " + b + ": cannot replace")) << message;
  EXPECT_EQ(read_file(a), "old a");
  EXPECT_EQ(read_file(b), "old b");
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"a.bin", "b.bin"}));
}

TEST(OutputFiles, StreamedArchiveEqualsTheEncodedOne) {
  const TempDir dir;
  NpyArray values;
  values.dtype = NpyDType::f32;
  values.shape = {3, 1000};
  for (int i = 0; i < 3000; ++i) values.f32.push_back(static_cast<float>(i) * 0.5f);
  NpyArray ids;
  ids.dtype = NpyDType::i32;
  ids.shape = {4};
  ids.i32 = {1, -2, 3, 4};
  const std::vector<NpzEntry> entries{{"values", values}, {"ids", ids}};
  write_npz(dir.file("a.npz"), entries);
  const std::vector<uint8_t> encoded = encode_npz(entries);
  EXPECT_EQ(read_file(dir.file("a.npz")), std::string(encoded.begin(), encoded.end()));
  EXPECT_EQ(read_npz(dir.file("a.npz")).at(0).array.f32, values.f32);
}

using OutputFilesDeathTest = ::testing::Test;

TEST_F(OutputFilesDeathTest, ASignalDuringAWriteRemovesTheTemporaryFile) {
  const TempDir dir;
  for (int signal_number : {SIGTERM, SIGINT}) {
    EXPECT_EXIT(
        {
          remove_temporaries_on_signals();
          OutputSet outputs;
          outputs.file(outputs.add(dir.file("o.npy"))).write(bytes_of("partial"));
          ::raise(signal_number);
          std::_Exit(0);  // not reached
        },
        ::testing::KilledBySignal(signal_number), "");
    EXPECT_EQ(listing(dir), std::vector<std::string>{});
  }
}

TEST_F(OutputFilesDeathTest, ASignalDuringTheCommitWaitsForItsEnd) {
  const TempDir dir;
  EXPECT_EXIT(
      {
        remove_temporaries_on_signals();
        {
          const SignalsHeldBack held_back;
          ::raise(SIGTERM);
          write_text(dir.file("survived"), "yes");
        }
        std::_Exit(0);  // not reached
      },
      ::testing::KilledBySignal(SIGTERM), "");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"survived"});
}

}  // namespace
}  // namespace dfss::io
