// The bytes of a .safetensors file from its JSON header and data section, laid out as the
// official writer does (header padded with spaces to 8 bytes, so the data stays aligned).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace dfss::test {

inline std::string safetensors_image(const nlohmann::json& header, const std::string& data) {
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  return out + text + data;
}

}  // namespace dfss::test
