#pragma once
// Small shared pieces of the Go ABI as the host sees it (internal to source/golang).

#include <cstdint>
#include <string_view>

namespace corral::golang {

// Go's string header: the SDK passes []string (CopyHeaders, SendLocalReply) as arrays of these.
struct GoString {
  const char* p;
  int64_t n;
};

// Host memory handed to Go as a uint64 (body chunk handles, string out-params).
inline uint64_t toHandle(const void* p) {
  return reinterpret_cast<uint64_t>(p);
}

// A header field (or pseudo-header) from a plugin that can go on the wire as it is: a value with
// CR/LF would split the message; pseudo-headers end up in the request or status line.
bool validPluginHeaderField(std::string_view key, std::string_view value);

}  // namespace corral::golang
