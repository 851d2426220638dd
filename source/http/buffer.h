#pragma once
// A contiguous byte buffer for body data passed through the filter chain. Chunks handed to a
// filter are small (one read's worth); a filter that buffers a whole body gets one contiguous
// copy it can inspect cheaply. Not thread-safe.

#include <string>
#include <string_view>

namespace corral::http {

class Buffer {
public:
  Buffer() = default;
  explicit Buffer(std::string_view data) : data_(data) {}

  size_t length() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  std::string_view view() const { return data_; }
  void add(std::string_view data) { data_.append(data); }
  void add(const Buffer& other) { data_.append(other.data_); }
  void prepend(std::string_view data) { data_.insert(0, data); }
  void drain(size_t n) { data_.erase(0, n < data_.size() ? n : data_.size()); }
  // Moves all of `other` to the end of this buffer.
  void move(Buffer& other) {
    if (data_.empty()) {
      data_.swap(other.data_);
    } else {
      data_.append(other.data_);
    }
    other.data_.clear();
  }
  void clear() { data_.clear(); }
  std::string& str() { return data_; }

private:
  std::string data_;
};

}  // namespace corral::http
