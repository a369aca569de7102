// The dfss command line, as a library so that tests can link it.
#pragma once

namespace dfss::cli {

// Parses the arguments and runs the command. Returns the process exit code: 0 on success
// (and for --help / --version), 2 for a usage error or any dfss::Error, which is printed
// on stderr as "dfss: error: <message>".
int run(int argc, char** argv);

}  // namespace dfss::cli
