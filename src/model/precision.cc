#include "dfss/bert.h"
#include "dfss/errors.h"

namespace dfss {

Precision parse_precision(const std::string& text, const std::string& argument_name) {
  if (text == "fp32") return Precision::fp32;
  if (text == "int8") return Precision::int8;
  throw InvalidArgument(argument_name + ": expected fp32 or int8, got '" + text + "'");
}

const char* precision_name(Precision precision) {
  return precision == Precision::int8 ? "int8" : "fp32";
}

}  // namespace dfss
