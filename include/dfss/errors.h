// Typed exceptions thrown by the dfss library. Every message names the argument or file
// at fault and the expected versus actual value.
#pragma once

#include <stdexcept>
#include <string>

namespace dfss {

// Base of every exception dfss throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An argument has the wrong rank, shape, stride, dtype or value.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A file could not be opened, read or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// A file was read but its contents are malformed (bad header, truncated data, ...).
class FormatError : public Error {
 public:
  using Error::Error;
};

// The request is well formed but this build or CPU cannot honour it (e.g. an ISA the CPU
// lacks was forced).
class Unsupported : public Error {
 public:
  using Error::Error;
};

// An allocation failed; the message says what was being allocated and how much, e.g.
// "out of memory while allocating layer 3's feed-forward activations (48 MB)".
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

}  // namespace dfss
