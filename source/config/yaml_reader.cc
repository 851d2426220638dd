#include "source/config/yaml_reader.h"

#include <charconv>

#include <fmt/format.h>

namespace corral::config {

void Errors::add(const YAML::Mark& mark, const std::string& path, const std::string& message) {
  if (mark.is_null()) {
    list_.push_back(fmt::format("{}: {}", path.empty() ? "<root>" : path, message));
  } else {
    list_.push_back(
        fmt::format("{} (line {}): {}", path.empty() ? "<root>" : path, mark.line + 1, message));
  }
}

std::string Errors::joined() const {
  std::string out;
  for (const auto& e : list_) {
    if (!out.empty()) {
      out += '\n';
    }
    out += e;
  }
  return out;
}

At At::field(const std::string& key) const {
  // Const access: reading a missing key must not insert it.
  const YAML::Node& self = node;
  YAML::Node child = self.IsMap() ? YAML::Node(self[key]) : YAML::Node(YAML::NodeType::Undefined);
  const std::string child_path = path.empty() ? key : path + "." + key;
  // A missing key has no mark of its own: point at the parent mapping's line.
  return At{child, child_path, child.IsDefined() ? child.Mark() : mark};
}

At At::index(size_t i) const {
  const YAML::Node& self = node;
  YAML::Node child(self[i]);
  return At{child, fmt::format("{}[{}]", path, i), child.Mark()};
}

bool Reader::mapping(const At& at, std::initializer_list<std::string_view> allowed) {
  if (!at.node.IsMap()) {
    error(at, "expected a mapping");
    return false;
  }
  for (const auto& kv : at.node) {
    const std::string key = kv.first.Scalar();
    bool ok = false;
    for (auto a : allowed) {
      ok = ok || key == a;
    }
    if (!ok) {
      std::string names;
      for (auto a : allowed) {
        names += names.empty() ? "" : ", ";
        names += a;
      }
      errors_.add(kv.first.Mark(), at.path.empty() ? key : at.path + "." + key,
                  fmt::format("unknown field; expected one of: {}", names));
    }
  }
  return true;
}

bool Reader::sequence(const At& at) {
  if (!at.node.IsSequence()) {
    error(at, "expected a list");
    return false;
  }
  return true;
}

std::optional<std::string> Reader::string(const At& at, bool required) {
  if (!at.present()) {
    if (required) {
      error(at, "required field is missing");
    }
    return std::nullopt;
  }
  if (!at.node.IsScalar()) {
    error(at, "expected a string");
    return std::nullopt;
  }
  return at.node.Scalar();
}

std::optional<uint64_t> Reader::uint(const At& at, bool required, uint64_t max) {
  auto s = string(at, required);
  if (!s) {
    return std::nullopt;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || p != s->data() + s->size() || s->empty()) {
    error(at, fmt::format("expected a non-negative integer, got \"{}\"", *s));
    return std::nullopt;
  }
  if (v > max) {
    error(at, fmt::format("value {} is out of range (max {})", v, max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Reader::boolean(const At& at) {
  auto s = string(at, false);
  if (!s) {
    return std::nullopt;
  }
  if (*s == "true") {
    return true;
  }
  if (*s == "false") {
    return false;
  }
  error(at, fmt::format("expected true or false, got \"{}\"", *s));
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> Reader::duration(const At& at) {
  auto s = string(at, false);
  if (!s) {
    return std::nullopt;
  }
  const std::string& v = *s;
  auto bad = [&] {
    error(at, fmt::format("expected a duration like \"5s\" or \"0.25s\", got \"{}\"", v));
    return std::nullopt;
  };
  if (v.size() < 2 || v.back() != 's') {
    return bad();
  }
  const std::string_view num(v.data(), v.size() - 1);
  const size_t dot = num.find('.');
  const std::string_view whole = num.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? "" : num.substr(dot + 1);
  if (whole.empty() || frac.size() > 9 || (dot != std::string_view::npos && frac.empty())) {
    return bad();
  }
  uint64_t secs = 0;
  auto [p, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), secs);
  if (ec != std::errc() || p != whole.data() + whole.size() || secs > 315576000000ULL) {
    return bad();
  }
  uint64_t nanos = 0;
  for (size_t i = 0; i < 9; ++i) {
    const char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') {
      return bad();
    }
    nanos = nanos * 10 + static_cast<uint64_t>(c - '0');
  }
  // Round a non-zero sub-millisecond duration up, so "0.0001s" does not become "disabled".
  uint64_t ms = secs * 1000 + nanos / 1000000;
  if (ms == 0 && nanos > 0) {
    ms = 1;
  }
  return std::chrono::milliseconds(ms);
}

std::optional<size_t> Reader::oneOf(const At& at, std::initializer_list<std::string_view> values,
                                    bool required) {
  auto s = string(at, required);
  if (!s) {
    return std::nullopt;
  }
  size_t i = 0;
  std::string names;
  for (auto v : values) {
    if (*s == v) {
      return i;
    }
    names += names.empty() ? "" : ", ";
    names += v;
    ++i;
  }
  error(at, fmt::format("unknown value \"{}\"; expected one of: {}", *s, names));
  return std::nullopt;
}

}  // namespace corral::config
