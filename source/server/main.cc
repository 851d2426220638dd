// corral: an HTTP proxy that runs Envoy Go extension filters and survives them.
// Command line after Envoy's: -c/--config-path, --mode serve|validate, --concurrency,
// -l/--log-level, --drain-time-s, --admin-address-path, --sandbox-binary, --version.

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "source/common/logger.h"
#include "source/server/server.h"

int main(int argc, char** argv) {
  CLI::App app{"corral: an HTTP/1.1 proxy for Envoy-style configs and Go extension filters"};
  corral::server::Options options;
  std::string mode = "serve";
  uint32_t drain_secs = 10;
  app.add_option("-c,--config-path", options.config_path, "Envoy-style YAML bootstrap config")
      ->required();
  app.add_option("--mode", mode, "serve (default) or validate: check the config and exit")
      ->check(CLI::IsMember({"serve", "validate"}));
  app.add_option("--concurrency", options.concurrency, "worker threads (default: cores)");
  app.add_option("--sandbox-binary", options.sandbox_binary,
                 "the sandbox process executable (default: corral-sandbox beside corral)");
  app.add_option("-l,--log-level", options.log_level,
                 "trace, debug, info, warning, error, critical, off");
  app.add_option("--drain-time-s", drain_secs,
                 "on SIGTERM, how long in-flight requests may take to finish (default 10)");
  app.add_option("--admin-address-path", options.admin_address_path,
                 "write the bound admin address (ip:port) to this file");
  app.set_version_flag("--version", std::string("corral version ") + "0.1.0");
  CLI11_PARSE(app, argc, argv);
  options.drain_time = std::chrono::seconds(drain_secs);

  if (!corral::Logger::setLevel(options.log_level)) {
    std::cerr << "unknown --log-level \"" << options.log_level << "\"\n";
    return 1;
  }
  corral::server::Server server(options);
  auto status = server.load();
  if (!status.ok()) {
    std::cerr << "error in configuration '" << options.config_path << "':\n"
              << status.message() << "\n";
    return 1;
  }
  if (mode == "validate") {
    for (const auto& w : server.bootstrap().warnings) {
      std::cout << "warning: " << w << "\n";
    }
    std::cout << "configuration '" << options.config_path << "' OK\n";
    return 0;
  }
  return server.run();
}
