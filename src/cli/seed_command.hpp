// `assetmv seed`: the exercise's world on real services (see seed/seeder.hpp).
#pragma once

#include <CLI/CLI.hpp>

namespace assetmv::cli {

// Registers the subcommand; the returned callback runs it and yields an exit code.
void add_seed_command(CLI::App& app, int& exit_code);

}  // namespace assetmv::cli
