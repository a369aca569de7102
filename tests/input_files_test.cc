// The rules every input file is read under (src/io/file_bytes.h): only regular files,
// opened without blocking, read to their end, with growth bounded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "child_process.h"
#include "cli/text_lines.h"
#include "dfss/errors.h"
#include "dfss/tokenizer.h"
#include "io/file_bytes.h"
#include "io/npy.h"
#include "io/npz.h"
#include "io/safetensors.h"
#include "model/bert_config.h"
#include "model/bert_weights.h"
#include "temp_dir.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::message_of;
using test::run_in_child;
using test::TempDir;
using test::write_file;

using Reader = std::pair<const char*, std::function<void(const std::string&)>>;

// Every function of the project that opens an input file by path.
std::vector<Reader> every_reader() {
  return {
      {"read_regular_file", [](const std::string& p) { io::read_regular_file(p, "a file"); }},
      {"read_npy", [](const std::string& p) { io::read_npy(p); }},
      {"read_npz", [](const std::string& p) { io::read_npz(p); }},
      {"SafetensorsFile::open", [](const std::string& p) { io::SafetensorsFile::open(p); }},
      {"load_bert_config", [](const std::string& p) { model::load_bert_config(p); }},
      {"Vocab::load", [](const std::string& p) { tokenizer::Vocab::load(p); }},
      {"read_text_lines", [](const std::string& p) { cli::read_text_lines(p); }},
  };
}

// Runs `reader` on `path` in a child, which must throw IoError starting with `expected`
// promptly: "" if so, else what happened.
std::string refusal_of(const Reader& reader, const std::string& path, const std::string& expected) {
  return run_in_child([&] {
    try {
      reader.second(path);
    } catch (const IoError& e) {
      if (std::string(e.what()).rfind(expected, 0) == 0) return 0;
      std::fprintf(stderr, "%s: message: %s\n", reader.first, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: not an IoError: %s\n", reader.first, e.what());
      return 2;
    }
    return 3;  // accepted
  });
}

TEST(InputFiles, EveryReaderRefusesAFifoWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir.file("input.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const Reader& reader : every_reader()) {
    // Without a writer, a plain open() of the FIFO would wait forever.
    EXPECT_EQ(refusal_of(reader, fifo, fifo + ": not a regular file (a FIFO); expected "), "")
        << reader.first;
  }
}

TEST(InputFiles, EveryReaderRefusesDevicesSocketsAndDirectories) {
  TempDir dir;
  const std::string socket_path = dir.file("input.sock");
  const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(socket_path.size(), sizeof address.sun_path);
  std::strcpy(address.sun_path, socket_path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  for (const Reader& reader : every_reader()) {
    EXPECT_EQ(refusal_of(reader, "/dev/zero", "/dev/zero: not a regular file (a character device)"),
              "")
        << reader.first;
    EXPECT_EQ(refusal_of(reader, socket_path, socket_path + ": not a regular file (a socket)"), "")
        << reader.first;
    EXPECT_EQ(refusal_of(reader, dir.path().string(), dir.path().string() + ": is a directory"), "")
        << reader.first;
  }
  ::close(listener);
}

TEST(InputFiles, ModelFilesThatAreFifosAreRefused) {
  for (const char* name : {"config.json", "model.safetensors"}) {
    SCOPED_TRACE(name);
    const test::TinyBert model;
    const std::string path = model.dir() + "/" + name;
    std::filesystem::remove(path);
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    const Reader load = {"load_bert_model",
                         [](const std::string& dir) { model::load_bert_model(dir); }};
    EXPECT_EQ(refusal_of(load, model.dir(), path + ": not a regular file (a FIFO)"), "");
  }
}

TEST(InputFiles, ProcFilesAreReadToTheirEnd) {
  // /proc files report a size of 0 and still have contents.
  struct stat info;
  ASSERT_EQ(::stat("/proc/self/status", &info), 0);
  ASSERT_EQ(info.st_size, 0);
  const std::vector<uint8_t> bytes = io::read_regular_file("/proc/self/status", "a file");
  const std::string text(bytes.begin(), bytes.end());
  EXPECT_EQ(text.rfind("Name:", 0), 0u) << text;

  const std::vector<std::string> lines = cli::read_text_lines("/proc/self/status");
  ASSERT_GT(lines.size(), 5u);
  EXPECT_EQ(lines[0].rfind("Name:", 0), 0u);
}

TEST(InputFiles, ReadsBytesAppendedAfterOpening) {
  TempDir dir;
  const std::string path = dir.file("growing.txt");
  write_file(path, "first\n");
  io::InputFile file(path, "a text file");
  EXPECT_EQ(file.size_at_open(), 6u);
  {
    std::ofstream append(path, std::ios::app | std::ios::binary);
    append << "second\n";
  }
  const std::vector<uint8_t> bytes = file.read_rest();
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "first\nsecond\n");
}

TEST(InputFiles, AFileThatKeepsGrowingIsRefused) {
  TempDir dir;
  const std::string path = dir.file("growing.bin");
  write_file(path, "0123456789");
  io::InputFile file(path, "a file");
  // Grown past the allowance after the open (sparse: no disk space used).
  std::filesystem::resize_file(path, 10 + io::kInputGrowthAllowance + 1);
  const std::string message = message_of<IoError>([&] { file.read_rest(); });
  EXPECT_EQ(message, path + ": grew beyond " + std::to_string(10 + io::kInputGrowthAllowance) +
                         " bytes while being read (it had 10 when opened); expected a file that "
                         "is not being written to");

  // Growth up to the allowance is read.
  write_file(path, "0123456789");
  io::InputFile again(path, "a file");
  std::filesystem::resize_file(path, 10 + io::kInputGrowthAllowance);
  EXPECT_EQ(again.read_rest().size(), 10 + io::kInputGrowthAllowance);
}

TEST(InputFiles, ShrinkingAfterOpenReadsWhatIsThere) {
  TempDir dir;
  const std::string path = dir.file("shrinking.bin");
  write_file(path, "0123456789");
  io::InputFile file(path, "a file");
  std::filesystem::resize_file(path, 4);
  const std::vector<uint8_t> bytes = file.read_rest();
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "0123");
}

TEST(InputFiles, ReadUpToAllocatesOnlyWhatArrives) {
  TempDir dir;
  const std::string path = dir.file("small.bin");
  write_file(path, "abc");
  io::InputFile file(path, "a file");
  // A corrupt length field may ask for far more than the file holds.
  const std::vector<uint8_t> bytes = file.read_up_to(uint64_t{1} << 50);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "abc");
  EXPECT_EQ(file.position(), 3u);
  EXPECT_EQ(file.skip_rest(), 0u);
}

TEST(InputFiles, NpyWithATinyFileClaimingHugeDataIsTruncatedNotAllocated) {
  TempDir dir;
  const std::string path = dir.file("huge.npy");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (68719476736,), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string bytes = "\x93NUMPY\x01";
  bytes += '\0';
  bytes += static_cast<char>(header.size() & 0xFF);
  bytes += static_cast<char>(header.size() >> 8);
  write_file(path, bytes + header + "abcd");
  const std::string message = message_of<FormatError>([&] { io::read_npy(path); });
  EXPECT_NE(message.find("truncated data: shape [68719476736] of float32 needs 274877906944 bytes"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("found 4"), std::string::npos) << message;
}

}  // namespace
}  // namespace dfss
