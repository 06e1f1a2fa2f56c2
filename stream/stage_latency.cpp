#include "stream/stage_latency.h"

#include <cstdio>

namespace lam::daemon {

const char* stage_name(Stage s) noexcept {
  switch (s) {
    case Stage::queue:
      return "queue";
    case Stage::matcher:
      return "matcher";
    case Stage::bus:
      return "bus";
  }
  return "?";
}

namespace {

/// b - a, or 0 when either stamp is missing or they are out of order.
std::int64_t span(std::int64_t a, std::int64_t b) noexcept {
  return a > 0 && b > a ? b - a : 0;
}

}  // namespace

void StageLatency::record(const StageStamps& t) noexcept {
  // A missing middle stamp folds its stage into the next one that has a start.
  const std::int64_t deq = t.dequeued > 0 ? t.dequeued : t.recv;
  const std::int64_t made = t.made > 0 ? t.made : deq;
  const std::array<std::int64_t, kStages> d{span(t.recv, deq), span(deq, made),
                                            span(made, t.published)};
  for (std::size_t i = 0; i < kStages; ++i) hist_[i].record_ns(d[i]);
  if (t.published - t.recv <= slow_ns_) return;
  std::size_t top = 0;
  for (std::size_t i = 1; i < kStages; ++i)
    if (d[i] > d[top]) top = i;
  ++slow_[top];
  for (std::size_t i = 0; i < kStages; ++i) slow_sum_ns_[i] += d[i];
}

void StageLatency::render(std::string& out) const {
  out +=
      "# HELP laminator_event_stage_seconds An event's receive -> publish time by stage: queue "
      "(receive -> the matcher's dequeue), matcher (dequeue -> the event made), bus (made -> "
      "published)\n# TYPE laminator_event_stage_seconds histogram\n";
  char label[32];
  for (std::size_t i = 0; i < kStages; ++i) {
    std::snprintf(label, sizeof label, "stage=\"%s\"", stage_name(static_cast<Stage>(i)));
    hist_[i].render_samples(out, "laminator_event_stage_seconds", label);
  }
  char line[320];
  std::snprintf(line, sizeof line,
                "# HELP laminator_slow_events_total Events slower than %.9g s from receive to "
                "publish, by the stage that took most of their time\n"
                "# TYPE laminator_slow_events_total counter\n",
                static_cast<double>(slow_ns_) / 1e9);
  out += line;
  for (std::size_t i = 0; i < kStages; ++i) {
    std::snprintf(line, sizeof line, "laminator_slow_events_total{stage=\"%s\"} %llu\n",
                  stage_name(static_cast<Stage>(i)), static_cast<unsigned long long>(slow_[i]));
    out += line;
  }
}

}  // namespace lam::daemon
