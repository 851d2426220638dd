#pragma once
// Typed, path-aware reads of YAML nodes. A Reader collects errors instead of throwing, so one
// pass reports every problem in a config. Paths look like "a.b[2].c"; lines are 1-based.
// Not thread-safe; used on the main thread while loading config.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace corral::config {

class Errors {
public:
  // `mark` gives the line; a null mark (a missing field) prints the path alone.
  void add(const YAML::Mark& mark, const std::string& path, const std::string& message);
  bool empty() const { return list_.empty(); }
  std::string joined() const;
  const std::vector<std::string>& list() const { return list_; }

private:
  std::vector<std::string> list_;
};

// A node together with its path.
struct At {
  YAML::Node node;
  std::string path;
  YAML::Mark mark;  // the node's mark, or its parent's when the node is missing

  At field(const std::string& key) const;
  At index(size_t i) const;
  bool present() const { return node.IsDefined() && !node.IsNull(); }
};

class Reader {
public:
  explicit Reader(Errors& errors) : errors_(errors) {}

  void error(const At& at, const std::string& message) { errors_.add(at.mark, at.path, message); }

  // Requires a mapping whose keys are all in `allowed`; reports each unknown key.
  bool mapping(const At& at, std::initializer_list<std::string_view> allowed);
  bool sequence(const At& at);

  std::optional<std::string> string(const At& at, bool required);
  std::optional<uint64_t> uint(const At& at, bool required, uint64_t max);
  std::optional<bool> boolean(const At& at);
  // protobuf JSON duration: "<seconds>s" with up to 9 fractional digits, e.g. "0.25s".
  std::optional<std::chrono::milliseconds> duration(const At& at);
  // One of `values`; returns its index.
  std::optional<size_t> oneOf(const At& at, std::initializer_list<std::string_view> values,
                              bool required);

private:
  Errors& errors_;
};

}  // namespace corral::config
