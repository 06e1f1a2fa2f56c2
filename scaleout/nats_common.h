#pragma once
// Internal to scaleout/: what the shard's JetStream publisher, the gateway's source and the
// gateway's journal share. With scaleout/jetstream_*.cpp, the only code that includes nats.c: no
// other header includes this one.

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "scaleout/gateway_event.h"
#include "scaleout/gateway_intake.h"
#include "scaleout/jetstream.h"
#include "scaleout/shard_order.h"

namespace lam::daemon::nats_detail {

using Clock = std::chrono::steady_clock;
inline constexpr std::int64_t kNsPerMs = 1'000'000;

/// A status as text. Never nats_GetLastError(): its text may quote the URL (and its credentials).
inline std::string why(natsStatus s, jsErrCode e = static_cast<jsErrCode>(0)) {
  std::string out = natsStatus_GetText(s);
  if (e != 0)
    out.append(" (JetStream error ").append(std::to_string(static_cast<int>(e))).append(")");
  return out;
}

/// One connection and its JetStream context. No automatic reconnection: the owner reconnects, so
/// that nothing published while disconnected is buffered and flushed out of order later.
struct Conn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { close(); }

  void close() {
    if (js != nullptr) jsCtx_Destroy(js);
    js = nullptr;
    if (nc != nullptr) natsConnection_Destroy(nc);
    nc = nullptr;
  }
  [[nodiscard]] bool ok() const {
    return nc != nullptr && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
  }

  /// Connects; on failure returns the reason (and stays closed).
  std::optional<std::string> open(const NatsConfig& cfg, const std::string& url, const char* name,
                                  jsOptions* jo) {
    close();
    natsOptions* o = nullptr;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, url.c_str());
    if (s == NATS_OK) s = natsOptions_SetName(o, name);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 2'000);
    // nats.c's flusher otherwise holds every write up to 1 ms to batch it: each publish and each
    // pull request would wait for it (measured: 1.1 ms added per event, 1,000 fetches/s).
    if (s == NATS_OK) s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK && (url.rfind("tls://", 0) == 0 || !cfg.ca_file.empty()))
      s = natsOptions_SetSecure(o, true);  // verifies the server's certificate
    if (s == NATS_OK && !cfg.ca_file.empty())
      s = natsOptions_LoadCATrustedCertificates(o, cfg.ca_file.c_str());
    if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, jo);
    if (s != NATS_OK) {
      close();
      return "cannot connect to NATS (" + redact_nats_url(url) + "): " + why(s);
    }
    return std::nullopt;
  }
};

inline std::string subjects_of(const NatsConfig& cfg) {
  return cfg.subject_prefix + ".>";
}

/// Creates the stream, or brings an existing one to the configured limits. Throws.
inline std::string ensure_stream_on(jsCtx* js, const NatsConfig& cfg) {
  const std::string subject = subjects_of(cfg);
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = cfg.stream.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_LimitsPolicy;
  sc.Discard = js_DiscardOld;
  sc.MaxAge = static_cast<std::int64_t>(cfg.max_age_hours) * 3600 * 1'000'000'000LL;
  sc.MaxBytes = cfg.max_bytes;
  sc.Storage = cfg.storage == NatsConfig::Storage::memory ? js_MemoryStorage : js_FileStorage;
  sc.Replicas = cfg.replicas;
  sc.Duplicates = cfg.duplicate_window.count() * kNsPerMs;  // nanoseconds
  jsStreamInfo* si = nullptr;
  jsErrCode e{};
  natsStatus s = js_GetStreamInfo(&si, js, cfg.stream.c_str(), nullptr, &e);
  std::string what;
  if (s == NATS_NOT_FOUND) {
    s = js_AddStream(&si, js, &sc, nullptr, &e);
    if (s != NATS_OK)
      throw std::runtime_error("cannot create stream " + cfg.stream + ": " + why(s, e));
    what = "created";
  } else if (s != NATS_OK) {
    throw std::runtime_error("cannot read stream " + cfg.stream + ": " + why(s, e));
  } else {
    const bool same = si->Config->Storage == sc.Storage &&
                      si->Config->Duplicates == sc.Duplicates && si->Config->MaxAge == sc.MaxAge &&
                      si->Config->MaxBytes == sc.MaxBytes && si->Config->SubjectsLen == 1 &&
                      subject == si->Config->Subjects[0] && si->Config->Replicas == sc.Replicas;
    if (si->Config->Storage != sc.Storage) {
      jsStreamInfo_Destroy(si);
      throw std::runtime_error("stream " + cfg.stream + " exists with another storage type than " +
                               "nats.storage (JetStream cannot change it; recreate the stream)");
    }
    jsStreamInfo_Destroy(si);
    si = nullptr;
    if (!same) {
      s = js_UpdateStream(&si, js, &sc, nullptr, &e);
      if (s != NATS_OK)
        throw std::runtime_error("cannot update stream " + cfg.stream + ": " + why(s, e));
      what = "updated to the configured limits";
    } else {
      s = js_GetStreamInfo(&si, js, cfg.stream.c_str(), nullptr, &e);
      if (s != NATS_OK)
        throw std::runtime_error("cannot read stream " + cfg.stream + ": " + why(s, e));
      what = "checked";
    }
  }
  const std::string line = "stream " + cfg.stream + " (" + subject + ") " + what + ": " +
                           std::to_string(si->State.Msgs) + " messages, seqs " +
                           std::to_string(si->State.FirstSeq) + ".." +
                           std::to_string(si->State.LastSeq);
  jsStreamInfo_Destroy(si);
  return line;
}

/// The stream's first and last seq (0, 0 when unknown).
inline std::pair<std::uint64_t, std::uint64_t> stream_bounds(jsCtx* js, const NatsConfig& cfg) {
  jsStreamInfo* si = nullptr;
  jsErrCode e{};
  if (js_GetStreamInfo(&si, js, cfg.stream.c_str(), nullptr, &e) != NATS_OK) return {0, 0};
  const std::pair<std::uint64_t, std::uint64_t> out{si->State.FirstSeq, si->State.LastSeq};
  jsStreamInfo_Destroy(si);
  return out;
}

inline const char* header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, key, &v) == NATS_OK ? v : nullptr;
}

/// A message of the stream as the gateway reads it (decode_message, scaleout/gateway_intake.h).
inline StreamMessage stream_message(natsMsg* m, std::uint64_t stream_seq) {
  const char* subject = natsMsg_GetSubject(m);
  return StreamMessage{
      stream_seq, subject == nullptr ? std::string_view{} : std::string_view(subject),
      header(m, kMsgIdHeader), header(m, kGapHeader),
      std::string_view(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)))};
}
inline std::optional<Decoded> decode(natsMsg* m, std::uint64_t stream_seq, std::string_view prefix,
                                     std::string& scratch) {
  return decode_message(stream_message(m, stream_seq), prefix, scratch);
}

inline void sleep_unless(const std::atomic<bool>& stop, std::chrono::milliseconds d) {
  const auto until = Clock::now() + d;
  while (!stop.load(std::memory_order_relaxed) && Clock::now() < until)
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(10), until - Clock::now()));
}

}  // namespace lam::daemon::nats_detail
