// What this binary is: the version (its one home is project() in the top
// CMakeLists.txt) and the commit it was built from, both written at build
// time by cmake/BuildInfo.cmake. --version, the JSON report and /metrics
// show them.
#pragma once

namespace assetmv::cli {

extern const char* const kVersion;  // "0.2.0"
extern const char* const kCommit;   // "463702e1a2b3", "...-dirty" with uncommitted changes, or "unknown"

}  // namespace assetmv::cli
