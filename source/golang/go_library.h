#pragma once
// A Go plugin library: a .so built with `go build -buildmode=c-shared` against Envoy's Go SDK.
// Loaded with dlopen once per library_id and never unloaded (a Go runtime cannot be unloaded,
// golang/go#11100; Envoy never dlcloses either). Loading runs the plugin's package init, which
// registers its filters and calls back into the host (envoyGoFilterLogLevel): the executable
// must export the host functions (corral_export_go_abi in cmake/golang.cmake).
//
// Thread-safety: load and the registry are main-thread only; the exports may be called from any
// thread once loaded.

#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "api.h"

namespace corral::golang {

// The functions the SDK exports (signatures as in its shim.go/config.go).
struct GoExports {
  uint64_t (*new_http_plugin_config)(httpConfig* config);
  void (*destroy_http_plugin_config)(uint64_t id, int need_delay);
  uint64_t (*merge_http_plugin_config)(uint64_t name_ptr, uint64_t name_len, uint64_t parent_id,
                                       uint64_t child_id);
  uint64_t (*on_http_header)(processState* s, uint64_t end_stream, uint64_t header_num,
                             uint64_t header_bytes);
  uint64_t (*on_http_data)(processState* s, uint64_t end_stream, uint64_t buffer, uint64_t length);
  void (*on_http_log)(httpRequest* r, uint64_t type, processState* decoding_state,
                      processState* encoding_state, uint64_t req_header_num,
                      uint64_t req_header_bytes, uint64_t req_trailer_num,
                      uint64_t req_trailer_bytes, uint64_t resp_header_num,
                      uint64_t resp_header_bytes, uint64_t resp_trailer_num,
                      uint64_t resp_trailer_bytes);
  void (*on_http_stream_complete)(httpRequest* r);
  void (*on_http_destroy)(httpRequest* r, uint64_t reason);
  void (*request_sema_dec)(httpRequest* r);
  void (*clean_up)();
};

// What this thread is calling into Go for, set around each host->Go call: host logging names
// the plugin, and config creation collects the plugin's error messages for its config error.
// (Logs from a plugin's own goroutines run on other threads and carry no plugin name.)
struct GoCallContext {
  const std::string* plugin = nullptr;
  std::string* errors = nullptr;  // error-level plugin log lines, "; "-joined
};
inline thread_local GoCallContext tls_go_call;

class ScopedGoCall {
public:
  explicit ScopedGoCall(const std::string& plugin, std::string* errors = nullptr)
      : saved_(tls_go_call) {
    tls_go_call = {&plugin, errors};
  }
  ~ScopedGoCall() { tls_go_call = saved_; }
  ScopedGoCall(const ScopedGoCall&) = delete;
  ScopedGoCall& operator=(const ScopedGoCall&) = delete;

private:
  GoCallContext saved_;
};

class GoLibrary {
public:
  // Errors name `yaml_path` (the filter config's library_path) and the file.
  static absl::StatusOr<std::shared_ptr<GoLibrary>> load(const std::string& path,
                                                         const std::string& yaml_path);
  const std::string& path() const { return path_; }
  const GoExports& exports() const { return exports_; }

private:
  GoLibrary(std::string path, GoExports exports) : path_(std::move(path)), exports_(exports) {}
  std::string path_;
  GoExports exports_;
};
using GoLibrarySharedPtr = std::shared_ptr<GoLibrary>;

// library_id → loaded library. Two filters with the same library_id share one .so, as in Envoy;
// the same library_id with another library_path is a config error.
class GoLibraryRegistry {
public:
  absl::StatusOr<GoLibrarySharedPtr> get(const std::string& library_id, const std::string& path,
                                         const std::string& yaml_path);
  // Registers a library loaded by other means (the sandbox process loads its one library through
  // an inherited fd): get() returns it for `library_id` whatever path the config names.
  void adopt(const std::string& library_id, GoLibrarySharedPtr library);
  template <class F>
  void forEach(F&& f) const {
    for (const auto& [id, library] : by_id_) {
      f(*library);
    }
  }

private:
  std::map<std::string, GoLibrarySharedPtr> by_id_;
  std::set<std::string> adopted_;
};

}  // namespace corral::golang
