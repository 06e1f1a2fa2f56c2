#include "daemon/crash_ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace lam::daemon {
namespace {

constexpr std::uint64_t kMagic = 0x4c414d52494e4731ULL;  // "LAMRING1"

/// One cache line, so the slots after it keep their 16-byte alignment (WriteOp holds an __int128).
struct alignas(64) Header {
  std::uint64_t magic;
  std::uint64_t slots;
  std::uint64_t record_size;
  std::uint64_t owner;  ///< identity of the database whose events the ring holds
};

[[noreturn]] void fail(const std::string& path, const char* what) {
  throw std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

/// `check` = seq ^ kMagic, written last: a slot whose check does not match its record's seq was
/// torn by the kill (or never written) and is ignored.
struct CrashRing::Slot {
  RingRecord record;
  std::uint64_t check;
};

CrashRing::CrashRing(const std::string& path, std::size_t slots) : path_(path), slots_(slots) {
  bytes_ = sizeof(Header) + slots * sizeof(Slot);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) fail(path, "cannot open crash ring");
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, "cannot stat crash ring");
  }
  bool fresh = static_cast<std::size_t>(st.st_size) != bytes_;
  if (fresh && ::ftruncate(fd, static_cast<off_t>(bytes_)) != 0) {
    ::close(fd);
    fail(path, "cannot size crash ring");
  }
  map_ = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path, "cannot map crash ring");
  }
  auto* h = static_cast<Header*>(map_);
  if (!fresh && (h->magic != kMagic || h->slots != slots || h->record_size != sizeof(Slot)))
    fresh = true;  // another layout: its records cannot be read
  if (fresh) {
    std::memset(map_, 0, bytes_);
    *h = Header{kMagic, slots, sizeof(Slot), 0};
  }
  slot_ = reinterpret_cast<Slot*>(static_cast<char*>(map_) + sizeof(Header));
}

bool CrashRing::adopt(std::uint64_t owner) {
  auto* h = static_cast<Header*>(map_);
  if (h->owner == owner) return true;
  const bool had_records = max_seq() > 0;
  std::memset(static_cast<char*>(map_) + sizeof(Header), 0, bytes_ - sizeof(Header));
  h->owner = owner;
  return !had_records;
}

CrashRing::~CrashRing() {
  if (map_ != nullptr) ::munmap(map_, bytes_);
}

std::vector<RingRecord> CrashRing::recover(std::uint64_t after) const {
  std::vector<RingRecord> out;
  for (std::size_t i = 0; i < slots_; ++i) {
    const Slot& s = slot_[i];
    const std::uint64_t seq = s.record.event.seq;
    if (seq == 0 || s.check != (seq ^ kMagic) || seq % slots_ != i) continue;
    if (seq > after) out.push_back(s.record);
  }
  std::sort(out.begin(), out.end(),
            [](const RingRecord& a, const RingRecord& b) { return a.event.seq < b.event.seq; });
  return out;
}

std::uint64_t CrashRing::max_seq() const {
  std::uint64_t m = 0;
  for (std::size_t i = 0; i < slots_; ++i) {
    const Slot& s = slot_[i];
    const std::uint64_t seq = s.record.event.seq;
    if (seq != 0 && s.check == (seq ^ kMagic) && seq % slots_ == i) m = std::max(m, seq);
  }
  return m;
}

void CrashRing::append(const RingRecord& r) noexcept {
  Slot& s = slot_[r.event.seq % slots_];
  s.check = 0;
  // Compiler barriers: the stores reach the shared page in program order (x86 keeps store order),
  // so a kill between them leaves a slot whose check does not match.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s.record = r;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s.check = r.event.seq ^ kMagic;
}

}  // namespace lam::daemon
