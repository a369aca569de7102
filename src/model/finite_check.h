// Finding NaN and infinite values in weights, which would otherwise turn every embedding
// into NaN without an error.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

namespace dfss::model {

// The index of the first NaN or ±inf in `values`, or nullopt if all are finite.
std::optional<size_t> first_non_finite(std::span<const float> values);

}  // namespace dfss::model
