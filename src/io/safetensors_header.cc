#include "io/safetensors_header.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "dfss/errors.h"
#include "io/npy.h"

namespace dfss::io::detail {
namespace {

using json = nlohmann::json;

// A valid header nests three deep (root, entry, shape); the cap stops hostile nesting early.
constexpr int kMaxJsonDepth = 8;
// data_offsets of up to this many scalar elements are quoted in full in messages.
constexpr size_t kQuotedOffsets = 4;
constexpr char kMetadataKey[] = "__metadata__";
constexpr char kEntryExpected[] = "; expected an object with dtype, shape and data_offsets";
constexpr char kDimExpected[] = "; expected a non-negative integer below 2^63";
constexpr char kOffsetsExpected[] = "; expected [begin, end] with non-negative integers";

// One scalar JSON value as the SAX parser reports it, enough to check and describe it.
struct Scalar {
  enum class Kind { index, string, other } kind;
  uint64_t number = 0;    // kind index: a non-negative integer literal
  std::string_view text;  // kind string: the contents; kind other: the literal

  // The value of a non-negative integer that fits in int64_t. nlohmann reports every
  // non-negative integer literal as unsigned; "-0", "1.0" and "1e3" are refused, as by
  // the official reader.
  std::optional<int64_t> as_index() const {
    if (kind != Kind::index || number > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(number);
  }
  // For "got ..." parts of messages.
  std::string describe() const {
    switch (kind) {
      case Kind::index: return std::to_string(number);
      case Kind::string: return "the string \"" + std::string(text.substr(0, 64)) + "\"";
      case Kind::other: return std::string(text);
    }
    return "";
  }
  // As written in JSON, for quoting a short array.
  std::string literal() const {
    return kind == Kind::string ? "\"" + std::string(text.substr(0, 64)) + "\"" : describe();
  }
};

// Receives nlohmann's SAX events and checks each value where it stands, keeping only the
// tensors and metadata. Every violation throws FormatError at once; the few that need a
// whole array to describe (such as "an array of 3 elements") skip to its end first.
class HeaderHandler {
 public:
  HeaderHandler(std::span<const uint8_t> data, const std::string& file)
      : data_(data), file_(file) {}

  // The SAX interface.
  bool null() { return scalar({Scalar::Kind::other, 0, "null"}); }
  bool boolean(bool value) { return scalar({Scalar::Kind::other, 0, value ? "true" : "false"}); }
  bool number_integer(json::number_integer_t value) {
    // Only literals with a minus sign come here (others are unsigned), "-0" included.
    const std::string text = value == 0 ? "-0" : std::to_string(value);
    return scalar({Scalar::Kind::other, 0, text});
  }
  bool number_unsigned(json::number_unsigned_t value) {
    return scalar({Scalar::Kind::index, value, {}});
  }
  bool number_float(json::number_float_t, const std::string& text) {
    return scalar({Scalar::Kind::other, 0, text});
  }
  bool string(std::string& value) { return scalar({Scalar::Kind::string, 0, value}); }
  bool binary(json::binary_t&) { return scalar({Scalar::Kind::other, 0, "binary data"}); }
  bool start_object(size_t) { return start(/*is_array=*/false); }
  bool start_array(size_t) { return start(/*is_array=*/true); }
  bool end_object() { return end(); }
  bool end_array() { return end(); }
  bool key(std::string& name);
  bool parse_error(size_t, const std::string&, const json::exception& error) {
    throw FormatError(file_ + ": header is not valid JSON: " + error.what());
  }

  SafetensorsHeader finish();

 private:
  // Where the next value goes: which container is open (kSkip: inside a value that is
  // being skipped to describe it in an error).
  enum class Place { before_root, root, metadata, entry, shape, offsets, skip, after_root };
  enum Field : unsigned { kDType = 1, kShape = 2, kOffsets = 4 };

  bool scalar(const Scalar& value);
  bool start(bool is_array);
  bool end();
  // Starts skipping the array open at depth `base` (holding `count` elements so far); at
  // its end, throws prefix + "an array of N elements" + suffix.
  void skip(int base, size_t count, std::string prefix, std::string suffix);
  // Throws prefix + "an object" + suffix, or skips the array to count it first.
  void refuse_container(bool is_array, std::string prefix, std::string suffix);
  void finish_offsets();
  void finish_entry();

  std::string tensor_at() const { return where(file_, &key_); }
  std::string metadata_entry() const { return file_ + ": __metadata__ entry " + quote_name(key_); }
  [[noreturn]] void duplicate(std::string_view name) const {
    throw FormatError(file_ + ": header has the key " + quote_name(name) +
                      " twice; expected unique keys");
  }

  std::span<const uint8_t> data_;
  const std::string& file_;
  Place place_ = Place::before_root;
  int depth_ = 0;  // containers open

  std::string key_;  // the last key of the root or metadata object
  bool seen_metadata_ = false;
  std::vector<TensorInfo> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;

  // The entry being read.
  unsigned seen_ = 0;     // Field bits
  Field field_ = kDType;  // the one whose value comes next
  TensorInfo tensor_;
  int64_t numel_ = 1;
  size_t offsets_count_ = 0;
  std::optional<int64_t> offsets_[2];
  bool offsets_valid_ = true;
  std::string offsets_quoted_;

  // The value being skipped.
  int skip_base_ = 0;
  size_t skip_count_ = 0;
  std::string skip_prefix_, skip_suffix_;
};

bool HeaderHandler::key(std::string& name) {
  switch (place_) {
    case Place::root:
      if (name == kMetadataKey) {
        if (seen_metadata_) duplicate(name);
        seen_metadata_ = true;
      }
      key_.assign(name);  // tensor names are checked for duplicates once all are read
      break;
    case Place::metadata:
      if (metadata_.size() == kSafetensorsMaxMetadataEntries) {
        throw FormatError(file_ + ": __metadata__ has more than " +
                          std::to_string(kSafetensorsMaxMetadataEntries) + " entries");
      }
      key_.assign(name);
      break;
    case Place::entry: {
      if (name == "dtype") {
        field_ = kDType;
      } else if (name == "shape") {
        field_ = kShape;
      } else if (name == "data_offsets") {
        field_ = kOffsets;
      } else {
        throw FormatError(tensor_at() + "unexpected key " + quote_name(name) +
                          "; expected only dtype, shape and data_offsets");
      }
      if (seen_ & field_) duplicate(name);
      seen_ |= field_;
      break;
    }
    default: break;  // skipped
  }
  return true;
}

bool HeaderHandler::scalar(const Scalar& value) {
  switch (place_) {
    case Place::before_root:
      throw FormatError(file_ + ": header is " + value.describe() + "; expected a JSON object");
    case Place::root:
      if (key_ == kMetadataKey) {
        throw FormatError(file_ + ": __metadata__ is " + value.describe() +
                          "; expected an object of strings");
      }
      throw FormatError(tensor_at() + "entry is " + value.describe() + kEntryExpected);
    case Place::metadata:
      if (value.kind != Scalar::Kind::string) {
        throw FormatError(metadata_entry() + " is " + value.describe() + "; expected a string");
      }
      metadata_.emplace_back(key_, value.text);
      return true;
    case Place::entry:
      if (field_ == kDType) {
        const std::optional<SafetensorsDType> dtype = value.kind == Scalar::Kind::string
                                                          ? safetensors_dtype_from_name(value.text)
                                                          : std::nullopt;
        if (!dtype) {
          throw FormatError(tensor_at() + "dtype is " + value.describe() + "; expected one of " +
                            safetensors_dtype_names());
        }
        tensor_.dtype = *dtype;
      } else if (field_ == kShape) {
        throw FormatError(tensor_at() + "shape is " + value.describe() +
                          "; expected an array of integers");
      } else {
        throw FormatError(tensor_at() + "data_offsets is " + value.describe() + kOffsetsExpected);
      }
      return true;
    case Place::shape: {
      if (tensor_.shape.size() == kSafetensorsMaxRank) {
        throw FormatError(tensor_at() + "shape has more than " +
                          std::to_string(kSafetensorsMaxRank) + " dimensions");
      }
      const std::optional<int64_t> size = value.as_index();
      if (!size) {
        throw FormatError(tensor_at() + "shape element " + std::to_string(tensor_.shape.size()) +
                          " is " + value.describe() + kDimExpected);
      }
      // Checked in order, as the official reader does: any overflowing prefix is refused,
      // so later stride arithmetic on the shape cannot overflow either.
      if (__builtin_mul_overflow(numel_, *size, &numel_)) {
        throw FormatError(tensor_at() + "shape has more than 2^63 - 1 elements");
      }
      tensor_.shape.push_back(*size);
      return true;
    }
    case Place::offsets:
      if (offsets_count_ < 2) offsets_[offsets_count_] = value.as_index();
      offsets_valid_ = offsets_valid_ && value.as_index().has_value();
      if (offsets_count_ < kQuotedOffsets) {
        offsets_quoted_ += (offsets_count_ == 0 ? "[" : ",") + value.literal();
      }
      ++offsets_count_;
      return true;
    case Place::skip:
      if (depth_ == skip_base_) ++skip_count_;
      return true;
    case Place::after_root: break;  // nlohmann reports trailing values as errors
  }
  return true;
}

bool HeaderHandler::start(bool is_array) {
  if (place_ == Place::skip && depth_ == skip_base_) ++skip_count_;
  if (++depth_ > kMaxJsonDepth) {
    throw FormatError(file_ + ": header nests deeper than " + std::to_string(kMaxJsonDepth) +
                      " levels; expected {name: {dtype, shape, data_offsets}}");
  }
  switch (place_) {
    case Place::before_root:
      if (is_array) {
        skip(depth_, 0, file_ + ": header is ", "; expected a JSON object");
      } else {
        place_ = Place::root;
      }
      return true;
    case Place::root:
      if (key_ == kMetadataKey) {
        if (is_array) {
          skip(depth_, 0, file_ + ": __metadata__ is ", "; expected an object of strings");
        } else {
          place_ = Place::metadata;
        }
      } else if (is_array) {
        skip(depth_, 0, tensor_at() + "entry is ", kEntryExpected);
      } else {
        place_ = Place::entry;
        seen_ = 0;
        tensor_ = TensorInfo();
        tensor_.name = key_;
        numel_ = 1;
      }
      return true;
    case Place::metadata:
      refuse_container(is_array, metadata_entry() + " is ", "; expected a string");
      return true;
    case Place::entry:
      if (field_ == kDType) {
        refuse_container(is_array, tensor_at() + "dtype is ",
                         "; expected one of " + safetensors_dtype_names());
      } else if (field_ == kShape) {
        if (!is_array) {
          throw FormatError(tensor_at() + "shape is an object; expected an array of integers");
        }
        place_ = Place::shape;
      } else {
        if (!is_array) {
          throw FormatError(tensor_at() + "data_offsets is an object" + kOffsetsExpected);
        }
        place_ = Place::offsets;
        offsets_count_ = 0;
        offsets_[0] = offsets_[1] = std::nullopt;
        offsets_valid_ = true;
        offsets_quoted_.clear();
      }
      return true;
    case Place::shape:
      refuse_container(
          is_array, tensor_at() + "shape element " + std::to_string(tensor_.shape.size()) + " is ",
          kDimExpected);
      return true;
    case Place::offsets:
      // Described as a whole: "data_offsets is an array of N elements".
      skip(depth_ - 1, offsets_count_ + 1, tensor_at() + "data_offsets is ", kOffsetsExpected);
      return true;
    case Place::skip:
    case Place::after_root: break;
  }
  return true;
}

bool HeaderHandler::end() {
  if (place_ == Place::skip) {
    if (depth_ == skip_base_) {
      throw FormatError(skip_prefix_ + "an array of " + std::to_string(skip_count_) + " elements" +
                        skip_suffix_);
    }
    --depth_;
    return true;
  }
  --depth_;
  switch (place_) {
    case Place::root: place_ = Place::after_root; break;
    case Place::metadata: place_ = Place::root; break;
    case Place::entry:
      finish_entry();
      place_ = Place::root;
      break;
    case Place::shape: place_ = Place::entry; break;
    case Place::offsets:
      finish_offsets();
      place_ = Place::entry;
      break;
    default: break;
  }
  return true;
}

void HeaderHandler::skip(int base, size_t count, std::string prefix, std::string suffix) {
  place_ = Place::skip;
  skip_base_ = base;
  skip_count_ = count;
  skip_prefix_ = std::move(prefix);
  skip_suffix_ = std::move(suffix);
}

void HeaderHandler::refuse_container(bool is_array, std::string prefix, std::string suffix) {
  if (!is_array) throw FormatError(prefix + "an object" + suffix);
  skip(depth_, 0, std::move(prefix), std::move(suffix));
}

void HeaderHandler::finish_offsets() {
  if (offsets_count_ != 2 || !offsets_valid_) {
    const std::string got = offsets_count_ <= kQuotedOffsets
                                ? (offsets_count_ == 0 ? "[" : offsets_quoted_) + "]"
                                : "an array of " + std::to_string(offsets_count_) + " elements";
    throw FormatError(tensor_at() + "data_offsets is " + got + kOffsetsExpected);
  }
}

void HeaderHandler::finish_entry() {
  for (const auto& [field, name] : {std::pair{kDType, "dtype"}, std::pair{kShape, "shape"},
                                    std::pair{kOffsets, "data_offsets"}}) {
    if (!(seen_ & field)) throw FormatError(tensor_at() + "missing \"" + name + "\"");
  }
  const int64_t begin = *offsets_[0], end = *offsets_[1];
  if (begin > end) {
    throw FormatError(tensor_at() + "data_offsets " + range_string(begin, end) +
                      " end before they begin");
  }
  if (static_cast<uint64_t>(end) > data_.size()) {
    throw FormatError(tensor_at() + "data_offsets " + range_string(begin, end) +
                      " run past the data section of " + std::to_string(data_.size()) + " bytes");
  }
  int64_t needed = 0;
  const bool overflow =
      __builtin_mul_overflow(numel_, safetensors_dtype_size(tensor_.dtype), &needed);
  if (overflow || needed != end - begin) {
    throw FormatError(tensor_at() + safetensors_dtype_name(tensor_.dtype) + " shape " +
                      shape_string(tensor_.shape) + " needs " +
                      (overflow ? std::string("more than 2^63 - 1") : std::to_string(needed)) +
                      " bytes, but data_offsets " + range_string(begin, end) + " hold " +
                      std::to_string(end - begin));
  }
  tensor_.bytes = data_.subspan(static_cast<size_t>(begin), static_cast<size_t>(needed));
  tensor_.data_offset = static_cast<uint64_t>(begin);
  // NumPy and PyTorch write only 0 and 1; anything else is corruption (and not a valid bool).
  if (tensor_.dtype == SafetensorsDType::bool_) {
    for (size_t i = 0; i < tensor_.bytes.size(); ++i) {
      if (tensor_.bytes[i] > 1) {
        throw FormatError(tensor_at() + "BOOL element " + std::to_string(i) + " has byte value " +
                          std::to_string(tensor_.bytes[i]) + "; expected 0 or 1");
      }
    }
  }
  tensors_.push_back(std::move(tensor_));
}

SafetensorsHeader HeaderHandler::finish() {
  // Duplicates are found by sorting rather than by a set of every key seen: the sort is
  // needed anyway (tensors() is sorted by name) and costs no extra memory.
  SafetensorsHeader header;
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  const auto same_name = [](const TensorInfo& a, const TensorInfo& b) { return a.name == b.name; };
  if (auto it = std::adjacent_find(tensors_.begin(), tensors_.end(), same_name);
      it != tensors_.end()) {
    duplicate(it->name);
  }
  std::sort(metadata_.begin(), metadata_.end());
  const auto same_key = [](const auto& a, const auto& b) { return a.first == b.first; };
  if (auto it = std::adjacent_find(metadata_.begin(), metadata_.end(), same_key);
      it != metadata_.end()) {
    duplicate(it->first);
  }
  for (auto& [key, value] : metadata_) {
    header.metadata.emplace_hint(header.metadata.end(), std::move(key), std::move(value));
  }
  header.tensors = std::move(tensors_);
  return header;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::string_view text, std::span<const uint8_t> data,
                                           const std::string& file) {
  HeaderHandler handler(data, file);
  try {
    json::sax_parse(text.begin(), text.end(), &handler);
  } catch (const json::exception& e) {
    throw FormatError(file + ": header is not valid JSON: " + e.what());
  }
  return handler.finish();
}

std::string quote_name(std::string_view text) {
  // Bounded so that a hostile multi-megabyte name cannot bloat every message.
  constexpr size_t kMax = 200;
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "'" + std::string(...).
  std::string out = "'";
  out.append(text.substr(0, kMax));
  if (text.size() > kMax) out.append("...");
  out.push_back('\'');
  if (text.size() > kMax) out.append(" (" + std::to_string(text.size()) + " bytes)");
  return out;
}

std::string range_string(uint64_t begin, uint64_t end) {
  // Appended piece by piece for the same reason as quote_name.
  std::string out = "[";
  out += std::to_string(begin);
  out += ", ";
  out += std::to_string(end);
  out += ']';
  return out;
}

std::string where(const std::string& file, const std::string* tensor) {
  return tensor ? file + ": tensor " + quote_name(*tensor) + ": " : file + ": ";
}

}  // namespace dfss::io::detail
