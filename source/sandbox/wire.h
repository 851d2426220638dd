#pragma once
// The payload encoding of the stream messages on a sandbox channel (protocol.h lists them):
// little-endian fixed-width integers and length-prefixed byte strings, nothing else. The reader
// is for untrusted input: every read is bounds-checked, a failed read sticks (ok() turns false
// and every later read returns zero values), and the caller checks ok() and done() once at the
// end — so a decoder is a straight list of reads with no error handling between them.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "source/http/header_map.h"

namespace corral::sandbox {

// Limits of what a peer may send in one message (checked on reading).
constexpr uint32_t kMaxHeaderFields = 1024;

class WireWriter {
public:
  explicit WireWriter(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { raw(&v, sizeof v); }
  void u64(uint64_t v) { raw(&v, sizeof v); }
  void i64(int64_t v) { raw(&v, sizeof v); }
  void bytes(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void headers(const http::HeaderMap& h) {
    u32(static_cast<uint32_t>(h.size()));
    for (const auto& e : h.entries()) {
      bytes(e.key);
      bytes(e.value);
    }
  }

private:
  void raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& out_;
};

class WireReader {
public:
  explicit WireReader(std::string_view in) : in_(in) {}
  uint8_t u8() {
    uint8_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  uint32_t u32() {
    uint32_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  int64_t i64() {
    int64_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  bool boolean() {
    const uint8_t v = u8();
    if (v > 1) {
      ok_ = false;
    }
    return v == 1;
  }
  // A view into the message (valid while it is).
  std::string_view bytes() {
    const uint32_t n = u32();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  // Appends the fields to `out`; at most kMaxHeaderFields.
  void headers(http::HeaderMap& out) {
    const uint32_t n = u32();
    if (n > kMaxHeaderFields) {
      ok_ = false;
    }
    for (uint32_t i = 0; ok_ && i < n; ++i) {
      std::string_view k = bytes();
      std::string_view v = bytes();
      if (ok_) {
        out.add(k, v);
      }
    }
  }
  bool ok() const { return ok_; }
  // Everything read and nothing left over.
  bool done() const { return ok_ && pos_ == in_.size(); }

private:
  void raw(void* p, size_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      std::memset(p, 0, n);
      return;
    }
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace corral::sandbox
