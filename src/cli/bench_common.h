// Pieces every `dfss bench` command shares.
#pragma once

#include <string>
#include <vector>

namespace dfss::cli {

// Median of timings (the mean of the middle two for an even count); `values` non-empty.
double median(std::vector<double> values);

// Fails before a long run rather than after it if `path` (given as `flag`) cannot be
// written: throws IoError naming both if io::check_output refuses it (a missing or
// unwritable directory, a directory or device in its place, ...).
void check_output_file(const std::string& path, const char* flag);

// Writes `text` to `path` atomically (io::OutputSet); errors name `flag`.
void write_text_file(const std::string& path, const std::string& text, const char* flag);

// The CPU's model name from /proc/cpuinfo, or "unknown"; recorded so that plots of the
// JSON can say which machine they show.
std::string cpu_model_name();

}  // namespace dfss::cli
