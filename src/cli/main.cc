#include "cli/cli.h"

int main(int argc, char** argv) {
  return dfss::cli::run(argc, argv);
}
