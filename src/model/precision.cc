#include "dfss/bert.h"
#include "dfss/errors.h"

namespace dfss {

Precision parse_precision(const std::string& text, const std::string& argument_name) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  if (text == "int8") return Precision::int8;
  throw InvalidArgument(argument_name + ": expected fp32, bf16 or int8, got '" + text + "'");
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::bf16: return "bf16";
    case Precision::int8: return "int8";
    default: return "fp32";
  }
}

}  // namespace dfss
