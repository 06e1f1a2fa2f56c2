// The gateway's journal: resumes read from the stream itself (scaleout/jetstream.h).
#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "scaleout/fetch_plan.h"
#include "scaleout/gateway_event.h"
#include "scaleout/jetstream.h"
#include "scaleout/nats_common.h"
#include "scaleout/publish_window.h"
#include "scaleout/shard_order.h"
#include "stream/prometheus.h"
#include "stream/request_thread.h"

namespace lam::daemon {

using namespace nats_detail;

// ---------------------------------------------------------------------------------------------
// The gateway's journal: the stream itself.

struct JetStreamJournal::Impl {
  struct Request {
    std::uint64_t after = 0, before = 0;
    std::size_t limit = 0;
    std::vector<Uuid> users;
    std::function<void(JournalPage)> done;
  };

  JournalPage read_page(const Request& r) {
    JournalPage page;
    if (!conn.ok()) {
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = 5'000;
      if (auto err = conn.open(cfg, url, "laminator-gateway-journal", &jo)) {
        page.error = *err;
        return page;
      }
    }
    const auto [first, last] = stream_bounds(conn.js, cfg);
    page.max_journaled = last;
    page.last_seq = r.after;
    if (r.after >= last) {
      page.ok = true;
      page.complete = true;
      return page;
    }
    const std::string filter = subjects_of(cfg);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = cfg.stream.c_str();
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = std::max(r.after + 1, first);
    so.Config.AckPolicy = js_AckNone;
    so.Config.InactiveThreshold = 30'000 * kNsPerMs;
    natsSubscription* sub = nullptr;
    jsErrCode e{};
    natsStatus s = js_PullSubscribe(&sub, conn.js, filter.c_str(), nullptr, nullptr, &so, &e);
    if (s != NATS_OK) {
      page.error = "cannot read the stream: " + why(s, e);
      conn.close();
      return page;
    }
    std::string scratch;
    std::size_t scanned = 0;
    bool end = false;
    bool end_read = false;
    while (!end && !end_read && scanned < r.limit) {
      natsMsgList list{nullptr, 0};
      const int want = static_cast<int>(std::min<std::size_t>(r.limit - scanned, 512));
      // no_wait with a wait: the server answers at once with what it has (or with the first
      // message to come), then ends the request, so none is ever left open for the next fetch to
      // find its late messages queued (libnats 3.4.1's `_fetch` overflow, nats.c PR #749;
      // scaleout/fetch_plan.h). The one that times out ends the read: its subscription goes.
      jsFetchRequest fr;
      jsFetchRequest_Init(&fr);
      fr.Batch = want;
      fr.NoWait = true;
      fr.Expires = 1'000 * kNsPerMs;
      const auto t0 = Clock::now();
      s = natsSubscription_FetchRequest(&list, sub, &fr);
      if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) break;
      // A page still arriving after the wait may have more on the way: this one is the last.
      if (Clock::now() - t0 >= std::chrono::seconds(1)) end_read = true;
      if (s != NATS_OK) {
        natsMsgList_Destroy(&list);
        page.error = "stream read failed: " + why(s, e);
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        return page;
      }
      for (int i = 0; i < list.Count && !end; ++i) {
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, list.Msgs[i]) != NATS_OK) continue;
        const std::uint64_t seq = meta->Sequence.Stream;
        const bool at_end = meta->NumPending == 0;
        jsMsgMetaData_Destroy(meta);
        if (r.before != 0 && seq >= r.before) {
          end = true;
          break;
        }
        ++scanned;
        page.last_seq = seq;
        if (at_end || seq >= last) end = true;
        auto d = decode(list.Msgs[i], seq, cfg.subject_prefix, scratch);
        if (!d || !trusted_shard(shards, d->shard)) continue;  // passed over live too
        if (!r.users.empty() &&
            std::find(r.users.begin(), r.users.end(), d->entry.meta.user_id) == r.users.end())
          continue;
        page.rows.push_back(JournalRow{d->entry.meta, *d->entry.json});
      }
      natsMsgList_Destroy(&list);
    }
    natsSubscription_Unsubscribe(sub);  // deletes the ephemeral consumer
    natsSubscription_Destroy(sub);
    page.ok = true;
    // Complete only when the stream's end (or `before`) was reached: a fetch that timed out says
    // nothing about what follows, and a complete page lets the subscriber skip to max_journaled.
    page.complete = end;
    page.max_journaled = std::max(page.max_journaled, page.last_seq);
    return page;
  }

  void serve(Request& req) {
    JournalPage page = read_page(req);
    if (!page.ok) log->warn("journal read from JetStream failed: {}", page.error);
    req.done(std::move(page));
  }

  NatsConfig cfg;
  std::string url;
  std::vector<std::string> shards;  ///< [gateway] shards (empty: any)
  Conn conn;                        ///< the reader thread's (closed after it stopped)
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("gateway");
  RequestThread<Request> thread;  ///< last: stopped first
};

JetStreamJournal::JetStreamJournal(NatsConfig cfg, std::string url, std::vector<std::string> shards)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(cfg);
  impl_->url = std::move(url);
  impl_->shards = std::move(shards);
  impl_->thread.start("lam-nats-jrnl", [i = impl_.get()](Impl::Request& r) { i->serve(r); });
}

JetStreamJournal::~JetStreamJournal() {
  stop();
}

void JetStreamJournal::read(std::uint64_t after, std::uint64_t before, std::size_t limit,
                            std::vector<Uuid> users, std::function<void(JournalPage)> done) {
  impl_->thread.post(
      {after, before, limit == 0 ? kPageRows : limit, std::move(users), std::move(done)});
}

void JetStreamJournal::stop() {
  impl_->thread.stop();
  impl_->conn.close();
}

}  // namespace lam::daemon
