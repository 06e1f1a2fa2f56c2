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

namespace {
constexpr std::size_t offsetof_check() {
  return sizeof(RingRecord) +
         (alignof(std::uint64_t) - sizeof(RingRecord) % alignof(std::uint64_t)) %
             alignof(std::uint64_t);
}
}  // namespace

namespace {

/// The records of a ring file of our layout but any slot count, read through a private mapping.
bool read_foreign_slots(int fd, std::size_t file_bytes, std::vector<RingRecord>& out,
                        std::uint64_t& owner, std::size_t record_size) {
  if (file_bytes < sizeof(Header)) return false;
  void* m = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) return false;
  const auto* h = static_cast<const Header*>(m);
  const bool ours = h->magic == kMagic && h->record_size == record_size && h->slots > 0 &&
                    sizeof(Header) + h->slots * record_size == file_bytes;
  if (ours) {
    owner = h->owner;
    const char* base = static_cast<const char*>(m) + sizeof(Header);
    for (std::size_t i = 0; i < h->slots; ++i) {
      RingRecord r;
      std::uint64_t check = 0;
      std::memcpy(&r, base + i * record_size, sizeof r);
      std::memcpy(&check, base + i * record_size + offsetof_check(), sizeof check);
      const std::uint64_t seq = r.event.seq;
      if (seq != 0 && check == (seq ^ kMagic) && seq % h->slots == i) out.push_back(r);
    }
  }
  ::munmap(m, file_bytes);
  return ours;
}

/// The highest seq in a ring file of another record layout (an older or newer build), read from
/// what every layout shares: the header, each slot's seq (the record's first field) and its check
/// (seq ^ kMagic, in the slot's last 8 or 16 bytes). False when it is not a ring at all.
bool foreign_max_seq(int fd, std::size_t file_bytes, std::uint64_t& max_seq) {
  max_seq = 0;
  if (file_bytes < sizeof(Header)) return false;
  void* m = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) return false;
  const auto* h = static_cast<const Header*>(m);
  const std::size_t rs = h->record_size;
  const bool ring = h->magic == kMagic && h->slots > 0 && rs >= 24 && rs % 8 == 0 &&
                    sizeof(Header) + h->slots * rs == file_bytes;
  if (ring) {
    const char* base = static_cast<const char*>(m) + sizeof(Header);
    for (std::size_t i = 0; i < h->slots; ++i) {
      std::uint64_t seq = 0, c8 = 0, c16 = 0;
      std::memcpy(&seq, base + i * rs, sizeof seq);
      std::memcpy(&c8, base + i * rs + rs - 8, sizeof c8);
      std::memcpy(&c16, base + i * rs + rs - 16, sizeof c16);
      if (seq != 0 && (c8 == (seq ^ kMagic) || c16 == (seq ^ kMagic)) && seq % h->slots == i)
        max_seq = std::max(max_seq, seq);
    }
  }
  ::munmap(m, file_bytes);
  return ring;
}

/// True when the first `n` bytes of `fd` are all zero (a ring that never held a record).
bool all_zero(int fd, std::size_t n) {
  if (n == 0) return true;
  void* m = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) return false;
  const auto* p = static_cast<const unsigned char*>(m);
  const bool zero = std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
  ::munmap(m, n);
  return zero;
}

}  // namespace

std::size_t CrashRing::file_bytes(std::size_t slots) noexcept {
  return sizeof(Header) + slots * sizeof(Slot);
}

CrashRing::CrashRing(const std::string& path, std::size_t slots, std::uint64_t journaled_through)
    : path_(path), slots_(slots) {
  bytes_ = file_bytes(slots);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) fail(path, "cannot open crash ring");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, "cannot stat crash ring");
  }
  const auto file_bytes = static_cast<std::size_t>(st.st_size);
  std::uint64_t owner = 0;
  bool fresh = file_bytes != bytes_;
  if (fresh && file_bytes > 0) {
    // Another size: another slot count (read its records and carry them over) or another layout
    // (refuse: its events may not be journaled yet, and they are not ours to throw away).
    // Another layout whose every event is journaled already (the usual upgrade) is simply
    // replaced; one that may hold unjournaled events is refused, never thrown away.
    std::uint64_t foreign_max = 0;
    if (!read_foreign_slots(fd, file_bytes, carried_, owner, sizeof(Slot)) &&
        !all_zero(fd, file_bytes)) {
      const bool ring = foreign_max_seq(fd, file_bytes, foreign_max);
      if (!ring || foreign_max > journaled_through) {
        ::close(fd);
        throw std::runtime_error(
            path +
            (ring ? ": the crash ring was written by a build with another record layout and "
                    "holds events up to seq " +
                        std::to_string(foreign_max) + ", beyond the journal's " +
                        std::to_string(journaled_through) +
                        "; start that build once to journal them, or move the file away if its "
                        "database was restored or replaced"
                  : std::string(": not a crash ring of any known layout, and it may hold events "
                                "not yet journaled; move it away only if you know they are")));
      }
    }
  }
  // Every page reserved on disk before it is mapped: a ring sized with ftruncate alone is sparse,
  // and on a full file system the first store into a page without blocks kills the process with
  // SIGBUS (nothing in the log; and the leftover file crashed every restart the same way). Growing
  // goes through posix_fallocate (it extends the file only when it succeeds); an existing file of
  // the right size is reserved too (a sparse leftover). Issue 32.
  if (const int e = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes_)); e != 0) {
    ::close(fd);
    if (file_bytes == 0) ::unlink(path.c_str());  // ours, empty: leave nothing behind
    throw std::runtime_error(
        path + ": cannot reserve " + std::to_string(bytes_) + " bytes for the crash ring (" +
        std::strerror(e) +
        "): free space on its file system, or point engine.crash_ring elsewhere or lower "
        "engine.crash_ring_slots");
  }
  if (fresh && file_bytes > bytes_ && ::ftruncate(fd, static_cast<off_t>(bytes_)) != 0) {
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
  if (!fresh && (h->magic != kMagic || h->slots != slots || h->record_size != sizeof(Slot))) {
    const bool empty = std::all_of(static_cast<const unsigned char*>(map_),
                                   static_cast<const unsigned char*>(map_) + bytes_,
                                   [](unsigned char c) { return c == 0; });
    if (!empty) {
      ::munmap(map_, bytes_);
      map_ = nullptr;
      throw std::runtime_error(path +
                               ": the crash ring has an unknown layout and may hold events "
                               "not yet journaled; move it away only if you know its events "
                               "are journaled");
    }
    fresh = true;
  }
  if (fresh) {
    std::memset(map_, 0, bytes_);
    *h = Header{kMagic, slots, sizeof(Slot), owner};
  }
  slot_ = reinterpret_cast<Slot*>(static_cast<char*>(map_) + sizeof(Header));
  // Carried records go back into the new layout, oldest first (the newest win a shared slot);
  // recover() also returns every carried record, so none is lost even when they do not all fit.
  std::sort(carried_.begin(), carried_.end(),
            [](const RingRecord& a, const RingRecord& b) { return a.event.seq < b.event.seq; });
  for (const RingRecord& r : carried_) append(r);
}

bool CrashRing::adopt(std::uint64_t owner, std::uint64_t legacy_owner) {
  auto* h = static_cast<Header*>(map_);
  if (h->owner == owner) return true;
  if (legacy_owner != 0 && h->owner == legacy_owner) {  // same database, older binding: rebind
    h->owner = owner;
    return true;
  }
  const bool had_records = max_seq() > 0;
  std::memset(static_cast<char*>(map_) + sizeof(Header), 0, bytes_ - sizeof(Header));
  carried_.clear();
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
  for (const RingRecord& r : carried_)
    if (r.event.seq > after) out.push_back(r);
  std::sort(out.begin(), out.end(),
            [](const RingRecord& a, const RingRecord& b) { return a.event.seq < b.event.seq; });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const RingRecord& a, const RingRecord& b) {
                          return a.event.seq == b.event.seq;
                        }),
            out.end());
  return out;
}

std::uint64_t CrashRing::max_seq() const {
  std::uint64_t m = 0;
  for (std::size_t i = 0; i < slots_; ++i) {
    const Slot& s = slot_[i];
    const std::uint64_t seq = s.record.event.seq;
    if (seq != 0 && s.check == (seq ^ kMagic) && seq % slots_ == i) m = std::max(m, seq);
  }
  for (const RingRecord& r : carried_) m = std::max(m, r.event.seq);
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

RecoveryPlan plan_recovery(const std::vector<RingRecord>& ring, std::uint64_t journal_max,
                           const std::vector<std::pair<std::uint64_t, std::uint64_t>>& holes) {
  RecoveryPlan plan;
  plan.last_seq = journal_max;
  for (const auto& [first, last] : holes) plan.hole_seqs += last - first + 1;
  std::size_t h = 0;
  std::uint64_t expect = journal_max + 1;
  for (const RingRecord& r : ring) {
    const std::uint64_t seq = r.event.seq;
    plan.last_seq = std::max(plan.last_seq, seq);
    if (seq > journal_max) {
      if (seq > expect) plan.lost_above_head += seq - expect;
      expect = seq + 1;
      plan.records.push_back(r);
      continue;
    }
    while (h < holes.size() && holes[h].second < seq) ++h;
    if (h < holes.size() && holes[h].first <= seq) {
      plan.records.push_back(r);
      ++plan.holes_filled;
    }
  }
  return plan;
}

}  // namespace lam::daemon
