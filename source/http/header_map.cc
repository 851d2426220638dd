#include "source/http/header_map.h"

#include <algorithm>

namespace corral::http {

std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    x = (x >= 'A' && x <= 'Z') ? static_cast<char>(x - 'A' + 'a') : x;
    y = (y >= 'A' && y <= 'Z') ? static_cast<char>(y - 'A' + 'a') : y;
    if (x != y) {
      return false;
    }
  }
  return true;
}

namespace {
// Calls fn(token) for each comma-separated element of a header value, trimmed of spaces and tabs;
// stops early when fn returns true. Returns whether it stopped early.
template <class Fn>
bool forEachToken(std::string_view list, Fn fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    if (fn(item)) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
  return false;
}
}  // namespace

bool hasToken(std::string_view list, std::string_view token) {
  return forEachToken(list, [&](std::string_view item) { return equalsIgnoreCase(item, token); });
}

void removeHopByHopHeaders(HeaderMap& headers, bool keep_te_trailers) {
  // Copy the names out first: removing fields moves the strings the views would point into.
  std::vector<std::string> named;
  bool te_trailers = false;
  for (const auto& e : headers.entries()) {
    if (e.key == "te") {
      te_trailers = te_trailers || hasToken(e.value, "trailers");
    }
    if (e.key != "connection") {
      continue;
    }
    forEachToken(e.value, [&](std::string_view token) {
      std::string name = toLower(token);
      if (!name.empty() && name[0] != ':' && name != "content-length") {
        named.push_back(std::move(name));
      }
      return false;
    });
  }
  auto hop = [&](const HeaderEntry& e) {
    const std::string& k = e.key;
    if (k == "connection" || k == "keep-alive" || k == "proxy-connection" ||
        k == "transfer-encoding" || k == "upgrade" || k == "te" || k == "trailer" ||
        k == "proxy-authenticate") {
      return true;
    }
    return std::find(named.begin(), named.end(), k) != named.end();
  };
  auto& e = headers.entries();
  e.erase(std::remove_if(e.begin(), e.end(), hop), e.end());
  if (keep_te_trailers && te_trailers) {
    headers.add("te", "trailers");
  }
}

const std::string* HeaderMap::get(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key) {
      return &e.value;
    }
  }
  return nullptr;
}

std::vector<std::string_view> HeaderMap::getAll(std::string_view key) const {
  std::vector<std::string_view> out;
  for (const auto& e : entries_) {
    if (e.key == key) {
      out.emplace_back(e.value);
    }
  }
  return out;
}

namespace {
bool hasUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') {
      return true;
    }
  }
  return false;
}
}  // namespace

void HeaderMap::add(std::string_view key, std::string_view value) {
  entries_.push_back({hasUpper(key) ? toLower(key) : std::string(key), std::string(value)});
}

void HeaderMap::set(std::string_view key, std::string_view value) {
  // Keys are almost always lower case already: avoid the copy then.
  std::string lowered;
  std::string_view k = key;
  if (hasUpper(key)) {
    lowered = toLower(key);
    k = lowered;
  }
  bool placed = false;
  auto it = entries_.begin();
  while (it != entries_.end()) {
    if (it->key == k) {
      if (!placed) {
        it->value = std::string(value);
        placed = true;
        ++it;
      } else {
        it = entries_.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (!placed) {
    entries_.push_back({std::string(k), std::string(value)});
  }
}

size_t HeaderMap::remove(std::string_view key) {
  std::string lowered;
  std::string_view k = key;
  if (hasUpper(key)) {
    lowered = toLower(key);
    k = lowered;
  }
  const size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const HeaderEntry& e) { return e.key == k; }),
                 entries_.end());
  return before - entries_.size();
}

size_t HeaderMap::byteSize() const {
  size_t n = 0;
  for (const auto& e : entries_) {
    n += e.key.size() + e.value.size();
  }
  return n;
}

}  // namespace corral::http
