#include "source/golang/go_library.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace corral::golang {

namespace {
// Looks up one export; the first one missing is remembered for the error message.
template <class F>
void resolve(void* handle, const char* name, F& out, std::string& missing) {
  out = reinterpret_cast<F>(dlsym(handle, name));
  if (out == nullptr && missing.empty()) {
    missing = name;
  }
}
}  // namespace

absl::StatusOr<std::shared_ptr<GoLibrary>> GoLibrary::load(const std::string& path,
                                                           const std::string& yaml_path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: cannot load \"{}\": {}", yaml_path, path, std::strerror(errno)));
  }
  // RTLD_LAZY: the .so leaves every envoyGo* host function unresolved until its first call.
  void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_GLOBAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return absl::InvalidArgumentError(fmt::format("{}: cannot load \"{}\": {}", yaml_path, path,
                                                  err != nullptr ? err : "dlopen failed"));
  }
  GoExports e{};
  std::string missing;
  resolve(handle, "envoyGoFilterNewHttpPluginConfig", e.new_http_plugin_config, missing);
  resolve(handle, "envoyGoFilterDestroyHttpPluginConfig", e.destroy_http_plugin_config, missing);
  resolve(handle, "envoyGoFilterMergeHttpPluginConfig", e.merge_http_plugin_config, missing);
  resolve(handle, "envoyGoFilterOnHttpHeader", e.on_http_header, missing);
  resolve(handle, "envoyGoFilterOnHttpData", e.on_http_data, missing);
  resolve(handle, "envoyGoFilterOnHttpLog", e.on_http_log, missing);
  resolve(handle, "envoyGoFilterOnHttpStreamComplete", e.on_http_stream_complete, missing);
  resolve(handle, "envoyGoFilterOnHttpDestroy", e.on_http_destroy, missing);
  resolve(handle, "envoyGoRequestSemaDec", e.request_sema_dec, missing);
  resolve(handle, "envoyGoFilterCleanUp", e.clean_up, missing);
  if (!missing.empty()) {
    // Not a Go plugin built with Envoy's SDK (or a too old one). A library without a Go runtime
    // can be unloaded again; one with a runtime cannot, so it stays mapped, unused.
    if (dlsym(handle, "_cgo_topofstack") == nullptr) {
      dlclose(handle);
    }
    return absl::InvalidArgumentError(
        fmt::format("{}: \"{}\" is not a Go plugin built with Envoy's Go SDK: missing export {}",
                    yaml_path, path, missing));
  }
  return std::shared_ptr<GoLibrary>(new GoLibrary(path, e));
}

absl::StatusOr<GoLibrarySharedPtr> GoLibraryRegistry::get(const std::string& library_id,
                                                          const std::string& path,
                                                          const std::string& yaml_path) {
  auto it = by_id_.find(library_id);
  if (it != by_id_.end()) {
    if (it->second->path() != path && adopted_.count(library_id) == 0) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: library_id \"{}\" is already loaded from \"{}\"; one library_id, one library_path",
          yaml_path, library_id, it->second->path()));
    }
    return it->second;
  }
  auto lib = GoLibrary::load(path, yaml_path);
  if (!lib.ok()) {
    return lib.status();
  }
  by_id_[library_id] = *lib;
  return *lib;
}

void GoLibraryRegistry::adopt(const std::string& library_id, GoLibrarySharedPtr library) {
  by_id_[library_id] = std::move(library);
  adopted_.insert(library_id);
}

}  // namespace corral::golang
