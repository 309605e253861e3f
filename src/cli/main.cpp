// assetmv: moves avatars from a legacy S3 bucket/prefix to the production
// one and rewrites their paths in PostgreSQL, safely, while the site runs.
#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cli/build_info.hpp"
#include "cli/common.hpp"
#include "cli/migrate_command.hpp"
#include "cli/seed_command.hpp"
#include "db/pg.hpp"

namespace {

// No core file and no ptrace by other users: a crash must not leave the
// credentials this process holds on disk.
void no_core_dumps() {
  const rlimit none{0, 0};
  setrlimit(RLIMIT_CORE, &none);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

// The process title (/proc/PID/cmdline, ps) shows argv: a password given in
// --db is masked there, in place, once the arguments are copied for parsing.
void mask_argv(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string masked = assetmv::db::mask_passwords(argv[i]);
    std::memcpy(argv[i], masked.data(), masked.size());
  }
}

int run(int argc, char** argv) {
  // Named, not argv[0]: usage lines (and the man page made from them) say "assetmv" wherever it runs from.
  CLI::App app{"assetmv: move legacy S3 objects to the production bucket/prefix and rewrite their paths in PostgreSQL",
               "assetmv"};
  // "assetmv 0.2.0 (commit 463702e1a2b3)": the first line is what help2man
  // and packaging read as the version.
  app.set_version_flag("--version",
                       fmt::format("assetmv {} (commit {})", assetmv::cli::kVersion, assetmv::cli::kCommit));
  app.require_subcommand(1);
  app.footer(assetmv::cli::kExitCodesHelp);
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
  no_core_dumps();
  try {
    std::vector<std::string> args(argv, argv + argc);
    std::vector<char*> ptrs;
    ptrs.reserve(args.size());
    for (auto& a : args) ptrs.push_back(a.data());
    mask_argv(argc, argv);
    return run(argc, ptrs.data());
  } catch (...) {
    std::fputs("assetmv: unexpected error during startup\n", stderr);
    return assetmv::cli::kExitUsage;
  }
}
