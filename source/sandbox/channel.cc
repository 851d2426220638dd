#include "source/sandbox/channel.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace corral::sandbox {
namespace {

struct ChannelHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t reserved;
  uint32_t capacity;
};

constexpr size_t kHeaderSize = 64;
constexpr size_t kControlSize = sizeof(RingControl);
constexpr size_t kDataOffset = kHeaderSize + 2 * kControlSize;
constexpr uint32_t kMinCapacity = 4096;
constexpr uint32_t kMaxCapacity = 64u << 20;
static_assert(kDataOffset % 64 == 0);

uint64_t padded(uint64_t n) {
  return (n + 7) & ~uint64_t{7};
}

size_t mappingSizeFor(uint32_t capacity) {
  return kDataOffset + 2 * static_cast<size_t>(capacity);
}

bool validCapacity(uint32_t c) {
  return c >= kMinCapacity && c <= kMaxCapacity && (c & (c - 1)) == 0;
}

void copyIn(char* data, uint32_t capacity, uint64_t pos, const void* src, size_t n) {
  const size_t off = pos & (capacity - 1);
  const size_t first = n < capacity - off ? n : capacity - off;
  std::memcpy(data + off, src, first);
  std::memcpy(data, static_cast<const char*>(src) + first, n - first);
}

void copyOut(const char* data, uint32_t capacity, uint64_t pos, void* dst, size_t n) {
  const size_t off = pos & (capacity - 1);
  const size_t first = n < capacity - off ? n : capacity - off;
  std::memcpy(dst, data + off, first);
  std::memcpy(static_cast<char*>(dst) + first, data, n - first);
}

void cpuRelax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

absl::Status errnoError(const char* what) {
  return absl::InternalError(fmt::format("{}: {}", what, std::strerror(errno)));
}

}  // namespace

// ---- RingWriter ----

RingWriter::Result RingWriter::write(uint32_t type, std::string_view payload) {
  if (corrupt_) {
    return Result::Corrupt;
  }
  const uint64_t need = kMessageHeaderSize + padded(payload.size());
  if (payload.size() > UINT32_MAX || need > capacity_) {
    return Result::TooLarge;
  }
  // The consumer's position comes from shared memory: check it before trusting the free space.
  const uint64_t read = control_->read_pos.load(std::memory_order_acquire);
  if (read > write_pos_ || write_pos_ - read > capacity_) {
    corrupt_ = true;
    return Result::Corrupt;
  }
  if (need > capacity_ - (write_pos_ - read)) {
    return Result::Full;
  }
  const uint32_t header[2] = {type, static_cast<uint32_t>(payload.size())};
  copyIn(data_, capacity_, write_pos_, header, sizeof(header));
  copyIn(data_, capacity_, write_pos_ + kMessageHeaderSize, payload.data(), payload.size());
  static constexpr char kZeros[8] = {};
  copyIn(data_, capacity_, write_pos_ + kMessageHeaderSize + payload.size(), kZeros,
         padded(payload.size()) - payload.size());
  write_pos_ += need;
  control_->write_pos.store(write_pos_, std::memory_order_release);
  wake_pending_ = true;
  if (!defer_wake_) {
    flushWake();
  }
  return Result::Ok;
}

void RingWriter::flushWake() {
  if (!wake_pending_) {
    return;
  }
  wake_pending_ = false;
  // Pairs with the consumer's fence between setting its flag and re-checking the ring.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (control_->consumer_sleeping.load(std::memory_order_relaxed) != 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
}

// ---- RingReader ----

bool RingReader::available(uint64_t* bytes) {
  const uint64_t write = control_->write_pos.load(std::memory_order_acquire);
  if (write < read_pos_ || write - read_pos_ > capacity_) {
    corrupt_ = true;
    return false;
  }
  *bytes = write - read_pos_;
  return true;
}

RingReader::Result RingReader::read(Message* out) {
  uint64_t avail = 0;
  if (corrupt_ || !available(&avail)) {
    return Result::Corrupt;
  }
  if (avail == 0) {
    return Result::Empty;
  }
  // A producer publishes whole messages only: anything short of one is a broken peer.
  uint32_t header[2];
  if (avail < kMessageHeaderSize) {
    corrupt_ = true;
    return Result::Corrupt;
  }
  copyOut(data_, capacity_, read_pos_, header, sizeof(header));
  const uint32_t length = header[1];
  const uint64_t need = kMessageHeaderSize + padded(length);
  if (length > max_payload_ || need > avail) {
    corrupt_ = true;
    return Result::Corrupt;
  }
  out->type = header[0];
  out->payload.resize(length);
  copyOut(data_, capacity_, read_pos_ + kMessageHeaderSize, out->payload.data(), length);
  read_pos_ += need;
  control_->read_pos.store(read_pos_, std::memory_order_release);
  return Result::Message;
}

bool RingReader::prepareToWait(int spin_checks) {
  uint64_t avail = 0;
  for (int i = 0; i < spin_checks; ++i) {
    if (!available(&avail) || avail > 0) {
      return true;  // a message (or corruption) to report: no sleep
    }
    cpuRelax();
  }
  control_->consumer_sleeping.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!available(&avail) || avail > 0) {
    control_->consumer_sleeping.store(0, std::memory_order_relaxed);
    return true;
  }
  return false;
}

void RingReader::doneWaiting() {
  control_->consumer_sleeping.store(0, std::memory_order_relaxed);
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof(count));  // non-blocking fd
}

// ---- Channel ----

absl::StatusOr<std::unique_ptr<Channel>> Channel::create(uint32_t capacity) {
  if (!validCapacity(capacity)) {
    return absl::InvalidArgumentError(
        fmt::format("channel capacity {} must be a power of two in [4 KiB, 64 MiB]", capacity));
  }
  const size_t size = mappingSizeFor(capacity);
  const int memfd = ::memfd_create("corral-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0) {
    return errnoError("memfd_create");
  }
  // Sealed at its size: a peer that could shrink the file would make our next access SIGBUS.
  if (::ftruncate(memfd, static_cast<off_t>(size)) != 0 ||
      ::fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    auto status = errnoError("sizing the channel memfd");
    ::close(memfd);
    return status;
  }
  const int to_sandbox = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int to_proxy = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (to_sandbox < 0 || to_proxy < 0 || base == MAP_FAILED) {
    auto status = errnoError("channel eventfd/mmap");
    for (int fd : {memfd, to_sandbox, to_proxy}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
    if (base != MAP_FAILED) {
      ::munmap(base, size);
    }
    return status;
  }
  auto* header = static_cast<ChannelHeader*>(base);
  header->magic = kChannelMagic;
  header->version = kChannelVersion;
  header->capacity = capacity;
  for (int ring = 0; ring < 2; ++ring) {
    new (static_cast<char*>(base) + kHeaderSize + ring * kControlSize) RingControl{};
  }
  return std::unique_ptr<Channel>(
      new Channel(memfd, to_sandbox, to_proxy, static_cast<char*>(base), size, capacity));
}

absl::StatusOr<std::unique_ptr<Channel>> Channel::attach(int memfd, int to_sandbox_eventfd,
                                                         int to_proxy_eventfd) {
  struct stat st {};
  if (::fstat(memfd, &st) != 0) {
    return errnoError("channel memfd");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kDataOffset) {
    return absl::InvalidArgumentError("channel mapping too small");
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (base == MAP_FAILED) {
    return errnoError("channel mmap");
  }
  ChannelHeader header;
  std::memcpy(&header, base, sizeof(header));
  if (header.magic != kChannelMagic || header.version != kChannelVersion ||
      !validCapacity(header.capacity) || mappingSizeFor(header.capacity) != size) {
    ::munmap(base, size);
    return absl::InvalidArgumentError(
        fmt::format("not a corral channel of version {} (magic {:#x}, version {}, size {})",
                    kChannelVersion, header.magic, header.version, size));
  }
  return std::unique_ptr<Channel>(new Channel(memfd, to_sandbox_eventfd, to_proxy_eventfd,
                                              static_cast<char*>(base), size, header.capacity));
}

Channel::~Channel() {
  ::munmap(base_, size_);
  for (int fd : {memfd_, to_sandbox_fd_, to_proxy_fd_}) {
    ::close(fd);
  }
}

RingControl* Channel::control(int ring) {
  return reinterpret_cast<RingControl*>(base_ + kHeaderSize + ring * kControlSize);
}

char* Channel::data(int ring) {
  return base_ + kDataOffset + static_cast<size_t>(ring) * capacity_;
}

// Ring 0 carries proxy -> sandbox, ring 1 sandbox -> proxy.
RingWriter Channel::proxyWriter() {
  return RingWriter(control(0), data(0), capacity_, to_sandbox_fd_);
}
RingReader Channel::proxyReader(uint32_t max_payload) {
  return RingReader(control(1), data(1), capacity_, to_proxy_fd_, max_payload);
}
RingWriter Channel::sandboxWriter() {
  return RingWriter(control(1), data(1), capacity_, to_proxy_fd_);
}
RingReader Channel::sandboxReader(uint32_t max_payload) {
  return RingReader(control(0), data(0), capacity_, to_sandbox_fd_, max_payload);
}

}  // namespace corral::sandbox
