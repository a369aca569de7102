#include "io/npy_header.h"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <optional>

#include "dfss/errors.h"

namespace dfss::io::detail {
namespace {

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr char kExpectedKeys[] = "exactly the keys 'descr', 'fortran_order' and 'shape'";

// Printable rendering of untrusted bytes for error messages, cut at `limit` characters.
std::string escape(std::string_view bytes, size_t limit = 80) {
  std::string text;
  for (size_t i = 0; i < bytes.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\n') {
      text += "\\n";
    } else if (c == '\\' || c == '"') {
      text += '\\';
      text += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7F) {
      text += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      text += hex;
    }
  }
  if (bytes.size() > limit) text += "...";
  return text;
}

uint64_t read_le(std::span<const uint8_t> bytes) {
  uint64_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) value = (value << 8) | bytes[i];
  return value;
}

struct DTypeSpelling {
  const char* descr;
  NpyDType dtype;
};
// The spellings NumPy writes for the supported types on a little-endian machine.
constexpr DTypeSpelling kDTypes[] = {{"<f4", NpyDType::f32}, {"|b1", NpyDType::bool_},
                                     {"<f8", NpyDType::f64}, {"<i8", NpyDType::i64},
                                     {"<i4", NpyDType::i32}, {"<u2", NpyDType::u16}};

const char* descr_of(NpyDType dtype) {
  for (const DTypeSpelling& spelling : kDTypes) {
    if (spelling.dtype == dtype) return spelling.descr;
  }
  return "?";
}

// The subset of Python literal syntax NumPy writes in headers: one dict with string keys
// whose values are a string, True/False, or a tuple of non-negative integers.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  struct Fields {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<int64_t>> shape;
  };

  Fields parse() {
    Fields fields;
    skip_space();
    expect('{', "the header dict to start with '{'");
    skip_space();
    while (!consume('}')) {
      const std::string key = parse_key();
      skip_space();
      expect(':', "':' after the key");
      skip_space();
      parse_value(key, fields);
      skip_space();
      if (consume(',')) {
        skip_space();
      } else if (peek() != '}') {
        fail("',' or '}' after the value of '" + key + "'");
      }
    }
    skip_space();
    if (pos_ != text_.size()) fail("only whitespace after the closing '}'");
    return fields;
  }

 private:
  [[noreturn]] void error(const std::string& message) const {
    throw FormatError(name_ + ": malformed .npy header: " + message + "; header: \"" +
                      escape(text_) + "\"");
  }

  [[noreturn]] void fail(const std::string& expected) const {
    std::string found = "the end of the header";
    if (pos_ < text_.size()) found = "\"" + escape(text_.substr(pos_), 12) + "\"";
    error("expected " + expected + " at offset " + std::to_string(pos_) + ", found " + found);
  }

  int peek() const { return pos_ < text_.size() ? static_cast<unsigned char>(text_[pos_]) : -1; }

  bool consume(char c) {
    if (peek() != static_cast<unsigned char>(c)) return false;
    ++pos_;
    return true;
  }

  void expect(char c, const std::string& what) {
    if (!consume(c)) fail(what);
  }

  void skip_space() {
    while (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') ++pos_;
  }

  static bool is_digit(int c) { return c >= '0' && c <= '9'; }

  std::string parse_key() {
    if (peek() != '\'' && peek() != '"') fail("a quoted key or '}'");
    return parse_string();
  }

  // A plain Python string literal; escapes are refused since no valid value needs them.
  std::string parse_string() {
    const char quote = text_[pos_++];
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' || text_[pos_] == '\n') fail("a string without escapes or newlines");
      ++pos_;
    }
    if (pos_ == text_.size()) fail(std::string("a closing ") + quote);
    ++pos_;
    return std::string(text_.substr(start, pos_ - 1 - start));
  }

  void parse_value(const std::string& key, Fields& fields) {
    if (key == "descr") {
      if (fields.descr) error("duplicate key 'descr'");
      if (peek() == '[') {
        error("'descr' is a list (a structured dtype); expected a string such as '<f4'");
      }
      if (peek() != '\'' && peek() != '"') fail("a string as the value of 'descr'");
      fields.descr = parse_string();
    } else if (key == "fortran_order") {
      if (fields.fortran_order) error("duplicate key 'fortran_order'");
      fields.fortran_order = parse_bool();
    } else if (key == "shape") {
      if (fields.shape) error("duplicate key 'shape'");
      fields.shape = parse_shape();
    } else {
      error("unexpected key '" + escape(key) + "'; expected " + kExpectedKeys);
    }
  }

  bool parse_bool() {
    const std::string_view rest = text_.substr(pos_);
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const size_t length = std::strlen(word);
      // Reject "Truex": the literal must end where the word does.
      if (rest.substr(0, length) == word &&
          (rest.size() == length || !std::isalnum(static_cast<unsigned char>(rest[length])))) {
        pos_ += length;
        return value;
      }
    }
    fail("True or False as the value of 'fortran_order'");
  }

  std::vector<int64_t> parse_shape() {
    expect('(', "a tuple such as (2, 3) as the value of 'shape'");
    std::vector<int64_t> shape;
    skip_space();
    if (consume(')')) return shape;
    while (true) {
      if (shape.size() == kNpyMaxDims) {
        error("shape has more than " + std::to_string(kNpyMaxDims) + " dimensions");
      }
      shape.push_back(parse_dimension());
      skip_space();
      if (consume(',')) {
        skip_space();
        if (consume(')')) return shape;
      } else if (consume(')')) {
        // "(3)" is the integer 3 in Python, not a tuple; NumPy rejects it too.
        if (shape.size() == 1) {
          error("shape (" + std::to_string(shape[0]) + ") is not a tuple; expected (" +
                std::to_string(shape[0]) + ",)");
        }
        return shape;
      } else {
        fail("',' or ')' in the shape tuple");
      }
    }
  }

  int64_t parse_dimension() {
    const bool negative = consume('-');
    if (!is_digit(peek())) fail("a non-negative integer dimension");
    if (peek() == '0' && pos_ + 1 < text_.size() && is_digit(text_[pos_ + 1])) {
      fail("an integer without leading zeros");
    }
    const size_t start = pos_;
    int64_t value = 0;
    bool overflow = false;
    while (is_digit(peek())) {
      overflow = overflow || __builtin_mul_overflow(value, 10, &value) ||
                 __builtin_add_overflow(value, peek() - '0', &value);
      ++pos_;
    }
    const std::string digits(text_.substr(start, pos_ - start));
    if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 long suffix, seen in old files
    if (negative) error("negative dimension -" + escape(digits) + " in shape");
    if (overflow) error("dimension " + escape(digits) + " in shape does not fit in 64 bits");
    return value;
  }

  std::string_view text_;
  const std::string& name_;
  size_t pos_ = 0;
};

}  // namespace

NpyPreamble parse_npy_preamble(std::span<const uint8_t> first_bytes, uint64_t file_size,
                               const std::string& name) {
  if (file_size == 0) {
    throw FormatError(name + ": file is empty; expected a .npy file starting with \"\\x93NUMPY\"");
  }
  const std::string_view bytes(reinterpret_cast<const char*>(first_bytes.data()),
                               first_bytes.size());
  if (file_size < sizeof kMagic || std::memcmp(first_bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw FormatError(
        name + ": not a .npy file: expected the magic string \"\\x93NUMPY\", found \"" +
        escape(bytes.substr(0, sizeof kMagic)) + "\"" +
        (file_size < sizeof kMagic ? " (the file has only " + std::to_string(file_size) + " bytes)"
                                   : std::string()));
  }
  if (file_size < 8) {
    throw FormatError(name + ": file ends after " + std::to_string(file_size) +
                      " bytes; expected a 2-byte format version after the magic string");
  }
  NpyPreamble preamble;
  preamble.major_version = first_bytes[6];
  const int minor = first_bytes[7];
  if (preamble.major_version < 1 || preamble.major_version > 3 || minor != 0) {
    throw FormatError(name + ": unsupported .npy format version " +
                      std::to_string(preamble.major_version) + "." + std::to_string(minor) +
                      "; expected 1.0, 2.0 or 3.0");
  }
  // Version 1.0 stores the header length in 16 bits, 2.0 and 3.0 in 32 bits.
  const size_t length_size = preamble.major_version == 1 ? 2 : 4;
  preamble.header_offset = 8 + length_size;
  if (file_size < preamble.header_offset) {
    throw FormatError(name + ": file ends after " + std::to_string(file_size) +
                      " bytes; expected a " + std::to_string(length_size) +
                      "-byte header length after the format version");
  }
  preamble.header_length = read_le(first_bytes.subspan(8, length_size));
  const uint64_t available = file_size - preamble.header_offset;
  if (preamble.header_length > available) {
    throw FormatError(name + ": header length field says " +
                      std::to_string(preamble.header_length) + " bytes, but only " +
                      std::to_string(available) + " bytes follow the " +
                      std::to_string(preamble.header_offset) + "-byte preamble");
  }
  return preamble;
}

std::string checked_size(const std::vector<int64_t>& shape, int64_t element_size, int64_t* numel,
                         uint64_t* bytes) {
  int64_t count = 1;
  bool overflow = false;
  for (int64_t dim : shape) {
    if (dim < 0) return "negative dimension " + std::to_string(dim);
    if (dim == 0) count = 0;
  }
  // With a zero dimension the array is empty whatever the others are, as in NumPy.
  if (count != 0) {
    for (int64_t dim : shape) overflow = overflow || __builtin_mul_overflow(count, dim, &count);
  }
  int64_t total = 0;
  overflow = overflow || __builtin_mul_overflow(count, element_size, &total);
  if (overflow) return "the element count overflows 64 bits";
  *numel = count;
  *bytes = static_cast<uint64_t>(total);
  return "";
}

NpyHeader parse_npy_header(const NpyPreamble& preamble, std::string_view header,
                           const std::string& name) {
  HeaderParser::Fields fields = HeaderParser(header, name).parse();
  for (const auto& [present, key] : {std::pair{fields.descr.has_value(), "descr"},
                                     std::pair{fields.fortran_order.has_value(), "fortran_order"},
                                     std::pair{fields.shape.has_value(), "shape"}}) {
    if (!present) {
      throw FormatError(name + ": malformed .npy header: missing the key '" + key + "'; expected " +
                        kExpectedKeys + "; header: \"" + escape(header) + "\"");
    }
  }

  NpyHeader result;
  const std::string& descr = *fields.descr;
  bool known = false;
  for (const DTypeSpelling& spelling : kDTypes) {
    if (descr == spelling.descr) {
      result.dtype = spelling.dtype;
      known = true;
    }
  }
  if (!known) {
    std::string supported;
    for (const DTypeSpelling& spelling : kDTypes) {
      supported += std::string(supported.empty() ? "" : ", ") + "'" + spelling.descr + "' (" +
                   npy_dtype_name(spelling.dtype) + ")";
    }
    const bool big_endian = !descr.empty() && descr[0] == '>';
    throw FormatError(name + ": unsupported dtype '" + escape(descr) + "'" +
                      (big_endian ? " (big-endian)" : "") + "; expected one of " + supported);
  }
  if (*fields.fortran_order) {
    throw FormatError(name +
                      ": fortran_order is True; expected a C-order array (fortran_order False; "
                      "save np.ascontiguousarray(a))");
  }
  result.shape = std::move(*fields.shape);

  const std::string problem =
      checked_size(result.shape, npy_dtype_size(result.dtype), &result.numel, &result.data_bytes);
  if (!problem.empty()) {
    throw FormatError(name + ": invalid shape " + shape_string(result.shape) + ": " + problem);
  }
  result.data_offset = preamble.header_offset + preamble.header_length;
  return result;
}

void check_npy_data_size(const NpyHeader& header, uint64_t file_size, const std::string& name) {
  const uint64_t found = file_size - header.data_offset;
  if (found != header.data_bytes) {
    const bool truncated = found < header.data_bytes;
    throw FormatError(name + ": " + (truncated ? "truncated" : "trailing") + " data: shape " +
                      shape_string(header.shape) + " of " + npy_dtype_name(header.dtype) +
                      " needs " + std::to_string(header.data_bytes) + " bytes after the " +
                      std::to_string(header.data_offset) + "-byte header, found " +
                      std::to_string(found));
  }
}

std::string format_npy_preamble_and_header(NpyDType dtype, const std::vector<int64_t>& shape) {
  std::string dict =
      std::string("{'descr': '") + descr_of(dtype) + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (i + 1 < shape.size() || shape.size() == 1) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
  }
  dict += "), }";
  // Pad with spaces and end with '\n' so that the data is 64-byte aligned (NumPy spec).
  constexpr size_t kPreambleSize = 10;
  constexpr size_t kAlign = 64;
  const size_t unpadded = kPreambleSize + dict.size() + 1;
  dict.append((kAlign - unpadded % kAlign) % kAlign, ' ');
  dict += '\n';

  std::string out(reinterpret_cast<const char*>(kMagic), sizeof kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict;
}

}  // namespace dfss::io::detail
