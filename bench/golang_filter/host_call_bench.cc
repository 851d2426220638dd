// Micro-benchmark (not a test): the cost of one host->Go call from a worker-like thread (a C
// thread, not created by Go), the unit every Golang filter phase pays at least once.
//
// The call is the SDK's exported envoyGoRequestSemaDec on a request Go does not know: cgo's
// callback entry and exit around a map lookup, nothing else. Whole requests through a no-op
// plugin are timed by bench/golang_filter/run.py.
//
// Usage: host_call_bench <plugins.so> [calls-per-round] [rounds]; prints ns per call.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "source/golang/go_library.h"
#include "source/golang/golang_filter.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <plugins.so> [calls-per-round] [rounds]\n", argv[0]);
    return 2;
  }
  const long calls = argc > 2 ? std::atol(argv[2]) : 2000000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 7;
  auto lib = corral::golang::GoLibrary::load(argv[1], "bench");
  if (!lib.ok()) {
    std::fprintf(stderr, "%s\n", std::string(lib.status().message()).c_str());
    return 1;
  }
  const auto& go = (*lib)->exports();
  // Sizes the SDK's per-worker request tables (concurrency 1), as the filter's config does.
  std::string name = "noop";
  httpConfig config{};
  config.plugin_name_ptr = reinterpret_cast<uint64_t>(name.data());
  config.plugin_name_len = name.size();
  config.concurrency = 1;
  config.is_route_config = 1;  // Go keeps no pointer to a route config: it may live on the stack
  if (go.new_http_plugin_config(&config) == 0) {
    std::fprintf(stderr, "config rejected\n");
    return 1;
  }
  httpRequest req{};
  req.plugin_name = {name.data(), name.size()};
  req.worker_id = 0;

  // A whole request's worth of calls as the filter makes them for a GET through the noop plugin:
  // request headers, response headers, one response body chunk, stream complete, access log,
  // destroy. The request objects are freed by Go's finalizer (envoyGoFilterHttpFinalize).
  const uint64_t config_id = go.new_http_plugin_config(&config);
  std::vector<double> cycle_ns;
  std::thread cycles([&] {
    for (int r = 0; r < rounds; ++r) {
      const long n = calls / 20;
      const auto start = std::chrono::steady_clock::now();
      for (long i = 0; i < n; ++i) {
        auto* rq = new corral::golang::GoRequest();
        rq->plugin_name = {name.data(), name.size()};
        rq->configId = config_id;
        rq->decoding.processHeader(true);
        go.on_http_header(&rq->decoding, 1, 0, 0);
        rq->decoding.setFilterState(corral::golang::FilterState::Done);
        rq->encoding.processHeader(false);
        go.on_http_header(&rq->encoding, 0, 0, 0);
        rq->encoding.processData(true);
        go.on_http_data(&rq->encoding, 1, 0, 0);
        rq->encoding.setFilterState(corral::golang::FilterState::Done);
        go.on_http_stream_complete(rq);
        go.on_http_log(rq, 6, &rq->decoding, &rq->encoding, 0, 0, 0, 0, 0, 0, 0, 0);
        go.on_http_destroy(rq, 0);
      }
      const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - start;
      cycle_ns.push_back(d.count() / static_cast<double>(n));
    }
  });
  cycles.join();
  std::sort(cycle_ns.begin(), cycle_ns.end());
  std::printf(
      "noop request cycle (6 host->Go calls, Go-side request state): median %.0f ns, "
      "min %.0f ns\n",
      cycle_ns[cycle_ns.size() / 2], cycle_ns.front());

  std::vector<double> ns;
  std::thread worker([&] {
    for (int r = 0; r < rounds; ++r) {
      const auto start = std::chrono::steady_clock::now();
      for (long i = 0; i < calls; ++i) {
        go.request_sema_dec(&req);
      }
      const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - start;
      ns.push_back(d.count() / static_cast<double>(calls));
    }
  });
  worker.join();
  std::sort(ns.begin(), ns.end());
  std::printf(
      "host->Go call (envoyGoRequestSemaDec, C thread): median %.1f ns, min %.1f ns, "
      "max %.1f ns over %d rounds of %ld calls\n",
      ns[ns.size() / 2], ns.front(), ns.back(), rounds, calls);
  return 0;
}
