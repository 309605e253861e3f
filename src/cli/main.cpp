// assetmv: moves avatars from a legacy S3 bucket/prefix to the production
// one and rewrites their paths in PostgreSQL, safely, while the site runs.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/common.hpp"
#include "cli/migrate_command.hpp"
#include "cli/seed_command.hpp"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"assetmv: move legacy S3 objects to the production bucket/prefix and rewrite their paths in PostgreSQL"};
  app.set_version_flag("--version", "assetmv 0.1.0");
  app.require_subcommand(1);
  int exit_code = assetmv::cli::kExitOk;
  assetmv::cli::add_migrate_commands(app, exit_code);
  assetmv::cli::add_seed_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : assetmv::cli::kExitUsage;
  } catch (const std::exception& e) {
    // Exceptions are for startup misconfiguration only (errors are values elsewhere).
    std::fprintf(stderr, "assetmv: %s\n", e.what());
    return assetmv::cli::kExitUsage;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (...) {
    std::fputs("assetmv: unexpected error during startup\n", stderr);
    return assetmv::cli::kExitUsage;
  }
}
