// Each subcommand registers its options and its action on the root CLI11 app. The
// action runs after parsing and stores the process exit code in *exit_code.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace brink::cli {

void add_info_command(CLI::App& app, int* exit_code);
void add_run_command(CLI::App& app, int* exit_code);
void add_bench_command(CLI::App& app, int* exit_code);
// brink eval: a candidate model against its reference on real data (cmd_eval.cc).
void add_eval_command(CLI::App& app, int* exit_code);
// keygen, pack, verify (cmd_package.cc).
void add_package_commands(CLI::App& app, int* exit_code);
// brink quantize (cmd_quantize.cc).
void add_quantize_command(CLI::App& app, int* exit_code);

// `brink info` for a .brink package.
int package_info_command(const std::string& path, bool json, const std::string& key_file);

}  // namespace brink::cli
