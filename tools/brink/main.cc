// brink: the command line over the Brink libraries. One file per subcommand (cmd_*.cc).
#include <cstdio>
#include <string>

#include "brink/status.h"
#include "cli_common.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"brink: optimize, verify, package and run neural networks on edge devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("brink ") + BRINK_VERSION);
  int exit_code = 0;
  brink::cli::add_info_command(app, &exit_code);
  brink::cli::add_run_command(app, &exit_code);
  brink::cli::add_bench_command(app, &exit_code);
  brink::cli::add_eval_command(app, &exit_code);
  brink::cli::add_package_commands(app, &exit_code);
  brink::cli::add_quantize_command(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "error: %s (see brink --help)\n", msg.c_str());
    return brink::cli::kExitUsage;
  }
  return exit_code;
}
