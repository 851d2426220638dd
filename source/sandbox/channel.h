#pragma once
// The shared-memory channel between the proxy and a sandbox process (protocol.h says what goes
// over it). One memfd holds two single-producer/single-consumer byte rings, one per direction;
// an eventfd per direction wakes a consumer that went to sleep.
//
// Trust: the sandbox process may write anything into the shared mapping at any moment. So each
// side keeps its own positions in private memory and only *publishes* them to the mapping; what
// it reads of the peer's position is loaded once, bounds-checked, and a message is copied out of
// the ring into private memory before it is validated (no double reads of shared memory). A
// check that fails makes the ring Corrupt for good: the owner kills that process, never itself.
//
// Wire format (version 2): the mapping starts with a header (magic "CRLC", version, ring
// capacity); each ring is a control block (write position, read position, consumer-sleeping
// flag; each on its own cache line) and `capacity` bytes of data. A message is
// {uint32 type, uint32 length, payload, zero padding to 8 bytes}; it may wrap around the end.
// Positions are byte counts since the start (uint64, never wrap in practice).
//
// Wake-ups: a consumer spins briefly (kSpinChecks) and then sets its sleeping flag, re-checks,
// and sleeps on its eventfd; a producer that publishes while the flag is set writes the eventfd.
// The proxy side puts its eventfd into its event loop instead of sleeping.
//
// Thread-safety: one producer thread and one consumer thread per ring.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace corral::sandbox {

constexpr uint32_t kChannelMagic = 0x434c5243;  // "CRLC"
constexpr uint16_t kChannelVersion = 2;         // 2: the stream messages of protocol.h
constexpr size_t kMessageHeaderSize = 8;

struct Message {
  uint32_t type = 0;
  std::string payload;
};

// One direction's control block in the mapping.
struct RingControl {
  alignas(64) std::atomic<uint64_t> write_pos;
  alignas(64) std::atomic<uint64_t> read_pos;
  alignas(64) std::atomic<uint32_t> consumer_sleeping;
};

class RingWriter {
public:
  RingWriter(RingControl* control, char* data, uint32_t capacity, int wake_fd)
      : control_(control), data_(data), capacity_(capacity), wake_fd_(wake_fd) {}
  enum class Result { Ok, Full, TooLarge, Corrupt };
  // Copies one message into the ring and wakes the consumer if it sleeps (or, with deferred
  // wake-ups, leaves that to flushWake()).
  Result write(uint32_t type, std::string_view payload);
  bool corrupt() const { return corrupt_; }
  // Batching: writes only publish; flushWake() wakes the consumer once for all of them.
  void setDeferWake(bool defer) { defer_wake_ = defer; }
  void flushWake();
  bool wakePending() const { return wake_pending_; }

private:
  RingControl* control_;
  char* data_;
  uint32_t capacity_;
  int wake_fd_;
  uint64_t write_pos_ = 0;  // ours; the mapping only gets a copy
  bool corrupt_ = false;
  bool defer_wake_ = false;
  bool wake_pending_ = false;
};

class RingReader {
public:
  RingReader(RingControl* control, const char* data, uint32_t capacity, int wake_fd,
             uint32_t max_payload)
      : control_(control),
        data_(data),
        capacity_(capacity),
        wake_fd_(wake_fd),
        max_payload_(max_payload) {}
  enum class Result { Message, Empty, Corrupt };
  // Takes the next message, copied into `out`. Corrupt: the producer broke the format (or the
  // positions); the ring stays Corrupt.
  Result read(Message* out);
  // Consumer side of the wake-up protocol: spin briefly, then announce sleep and re-check. True
  // if a message is ready without sleeping; false if the caller should wait on wakeFd().
  bool prepareToWait(int spin_checks = kSpinChecks);
  // After a wake-up through the eventfd: the consumer is awake again (clears the eventfd).
  void doneWaiting();
  // prepareToWait() said a message is there: awake again, no eventfd to clear.
  void awake() { control_->consumer_sleeping.store(0, std::memory_order_relaxed); }
  int wakeFd() const { return wake_fd_; }
  bool corrupt() const { return corrupt_; }

  static constexpr int kSpinChecks = 2000;

private:
  bool available(uint64_t* bytes);

  RingControl* control_;
  const char* data_;
  uint32_t capacity_;
  int wake_fd_;
  uint32_t max_payload_;
  uint64_t read_pos_ = 0;  // ours; the mapping only gets a copy
  bool corrupt_ = false;
};

// The mapping and its file descriptors. The creator (the proxy) makes it and hands memfd() and
// both eventfds to the sandbox process, which attaches with the same fds.
class Channel {
public:
  // `capacity`: bytes per ring, a power of two between 4 KiB and 64 MiB.
  static absl::StatusOr<std::unique_ptr<Channel>> create(uint32_t capacity);
  // The peer's side: validates the header it finds (magic, version, capacity vs the mapping).
  static absl::StatusOr<std::unique_ptr<Channel>> attach(int memfd, int to_sandbox_eventfd,
                                                         int to_proxy_eventfd);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  int memfd() const { return memfd_; }
  int toSandboxEventfd() const { return to_sandbox_fd_; }
  int toProxyEventfd() const { return to_proxy_fd_; }
  uint32_t capacity() const { return capacity_; }

  // Proxy side: writes events, reads (untrusted) actions.
  RingWriter proxyWriter();
  RingReader proxyReader(uint32_t max_payload);
  // Sandbox side.
  RingWriter sandboxWriter();
  RingReader sandboxReader(uint32_t max_payload);

  // For tests: the raw mapping, to scribble on it as a hostile peer would.
  char* mappingForTest() { return base_; }
  size_t mappingSize() const { return size_; }

private:
  Channel(int memfd, int to_sandbox_fd, int to_proxy_fd, char* base, size_t size, uint32_t capacity)
      : memfd_(memfd),
        to_sandbox_fd_(to_sandbox_fd),
        to_proxy_fd_(to_proxy_fd),
        base_(base),
        size_(size),
        capacity_(capacity) {}
  RingControl* control(int ring);
  char* data(int ring);

  int memfd_;
  int to_sandbox_fd_;
  int to_proxy_fd_;
  char* base_;
  size_t size_;
  uint32_t capacity_;
};

}  // namespace corral::sandbox
