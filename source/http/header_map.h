#pragma once
// An ordered list of HTTP header fields with lower-cased names, as Envoy keeps them. HTTP/1
// request lines and status lines are carried as pseudo-headers (":method", ":path",
// ":authority", ":scheme", ":status") so that filters see what they would see in Envoy.
// Not thread-safe; owned by one stream.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace corral::http {

struct HeaderEntry {
  std::string key;  // lower case
  std::string value;
};

// Room for a typical request's fields without a separate allocation.
using HeaderVector = absl::InlinedVector<HeaderEntry, 12>;

class HeaderMap {
public:
  // Returns the first value for `key` (lower case), or nullptr.
  const std::string* get(std::string_view key) const;
  std::string_view getView(std::string_view key) const {
    const std::string* v = get(key);
    return v ? std::string_view(*v) : std::string_view();
  }
  std::vector<std::string_view> getAll(std::string_view key) const;
  // Appends a field (key is lower-cased).
  void add(std::string_view key, std::string_view value);
  // Replaces all fields named `key` by one.
  void set(std::string_view key, std::string_view value);
  // Removes all fields named `key`; returns how many were removed.
  size_t remove(std::string_view key);
  void clear() { entries_.clear(); }

  size_t size() const { return entries_.size(); }
  // Sum of key and value lengths.
  size_t byteSize() const;
  const HeaderVector& entries() const { return entries_; }
  HeaderVector& entries() { return entries_; }

private:
  HeaderVector entries_;
};
using HeaderMapPtr = std::unique_ptr<HeaderMap>;

std::string toLower(std::string_view s);
bool equalsIgnoreCase(std::string_view a, std::string_view b);
// True if `list` (a comma-separated header value) contains `token`, ignoring case.
bool hasToken(std::string_view list, std::string_view token);

// Removes the hop-by-hop fields (RFC 9110 §7.6.1): connection, keep-alive, proxy-connection,
// transfer-encoding, upgrade, te, trailer, proxy-authenticate, and every field the Connection
// header names (never a pseudo-header or content-length). With keep_te_trailers, a
// "te: trailers" offer survives as exactly that (a request may carry it end to end).
void removeHopByHopHeaders(HeaderMap& headers, bool keep_te_trailers);

}  // namespace corral::http
