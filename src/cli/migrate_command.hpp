// `assetmv migrate` and `assetmv verify`: the product's command contract
// (options, exit codes, JSON report); the work itself is in engine/.
#pragma once

#include <CLI/CLI.hpp>

namespace assetmv::cli {

void add_migrate_commands(CLI::App& app, int& exit_code);

}  // namespace assetmv::cli
