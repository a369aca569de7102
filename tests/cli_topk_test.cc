// `dfss bench topk` end to end: a small run writes its JSON with every method, and bad
// values fail before any work with exit code 2.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dfss::test {
namespace {

TEST(CliBenchTopk, SmallRunReportsEveryMethod) {
  const TempDir dir;
  const CliResult result = run_cli(dir,
                                   "bench topk --lengths 300 --k 8 --rows 2 --threads 1 "
                                   "--distributions uniform --json '" +
                                       dir.file("topk.json") + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto doc = nlohmann::json::parse(read_file(dir.file("topk.json")));
  ASSERT_EQ(doc["results"].size(), 1u);
  const auto& row = doc["results"][0];
  EXPECT_EQ(row["length"], 300);
  EXPECT_EQ(row["k"], 8);
  for (const char* key : {"dfss_ms", "nth_element+sort_ms", "partial_sort_ms", "heap_ms"})
    EXPECT_GT(row[key].get<double>(), 0.0) << key;
}

TEST(CliBenchTopk, ListsTakeCommasOrSpaces) {
  const TempDir dir;
  for (const char* lists : {"--lengths 300,200 --k 8,L/16 --distributions uniform,sorted",
                            "--lengths 300 200 --k 8 L/16 --distributions uniform sorted"}) {
    const CliResult result = run_cli(dir, std::string("bench topk ") + lists +
                                              " --rows 2 --threads 1 --seconds 0 "
                                              "--methods heap --json '" +
                                              dir.file("topk.json") + "'");
    ASSERT_EQ(result.exit_code, 0) << lists << ": " << result.err;
    const auto doc = nlohmann::json::parse(read_file(dir.file("topk.json")));
    EXPECT_EQ(doc["results"].size(), 8u) << lists;  // 2 lengths x 2 k x 2 distributions
  }
}

TEST(CliBenchTopk, BadValuesFailBeforeTheRun) {
  const TempDir dir;
  for (const char* k : {"L/0", "abc", "0", "L/"}) {
    const CliResult result = run_cli(dir, std::string("bench topk --k ") + k);
    EXPECT_EQ(result.exit_code, 2) << k;
    EXPECT_NE(result.err.find("--k: expected N or L/N with N >= 1"), std::string::npos)
        << result.err;
    EXPECT_EQ(result.out.find("nth_element"), std::string::npos) << "ran before failing";
  }
}

}  // namespace
}  // namespace dfss::test
