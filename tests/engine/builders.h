#pragma once
// Small builders for matcher inputs in tests: ids from integers, decimals from text.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/fixed.h"
#include "engine/tick.h"
#include "engine/trail_book.h"

namespace lam::test {

inline Uuid id(std::uint64_t n, std::uint64_t kind = 0) {
  return Uuid{kind, n};
}
inline Decimal dec(const std::string& s) {
  auto p = parse_decimal(s);
  EXPECT_TRUE(p.ok()) << s;
  return p.value;
}
inline std::int64_t raw(const std::string& s) {
  auto r = parse_raw(s);
  EXPECT_TRUE(r.has_value()) << s;
  return r.value_or(0);
}

inline constexpr std::uint64_t kMarketKind = 0xA;
inline constexpr std::uint64_t kUserKind = 0xC;
inline constexpr std::uint64_t kAlertKind = 0xD;
inline constexpr std::uint64_t kPositionKind = 0xB;

inline MarketSpec market(std::uint32_t n, PriceSource src = PriceSource::mark,
                         const std::string& mmr = "0.005") {
  MarketSpec m;
  m.id = id(n, kMarketKind);
  m.instrument = n;
  m.source = src;
  m.mmr = raw(mmr);
  return m;
}

inline AlertSpec alert(std::uint64_t n, AlertType t, ConditionType c, std::uint32_t mkt = 1,
                       std::uint64_t user = 1) {
  AlertSpec a;
  a.id = id(n, kAlertKind);
  a.user_id = id(user, kUserKind);
  a.market_id = id(mkt, kMarketKind);
  a.type = t;
  a.condition = c;
  return a;
}

inline PositionSpec position(std::uint64_t n, Side side, const std::string& size,
                             const std::string& entry, const std::string& margin,
                             std::uint32_t mkt = 1, std::uint64_t user = 1) {
  PositionSpec p;
  p.id = id(n, kPositionKind);
  p.user_id = id(user, kUserKind);
  p.market_id = id(mkt, kMarketKind);
  p.side = side;
  p.size = raw(size);
  p.entry_price = raw(entry);
  p.margin = raw(margin);
  return p;
}

inline Tick mark(std::uint32_t instrument, const std::string& price, TimeNs ts_ms = 1000) {
  Tick t;
  t.instrument = instrument;
  t.kind = TickKind::mark;
  t.price = raw(price);
  t.exch_ts = ts_ms * kNsPerMs;
  return t;
}
inline Tick trade(std::uint32_t instrument, const std::string& price, const std::string& size,
                  TimeNs ts_ms) {
  Tick t = mark(instrument, price, ts_ms);
  t.kind = TickKind::trade;
  t.size = raw(size);
  return t;
}
inline Tick bbo(std::uint32_t instrument, const std::string& bid, const std::string& ask,
                TimeNs ts_ms = 1000) {
  Tick t = mark(instrument, bid, ts_ms);
  t.kind = TickKind::bbo;
  t.ask = raw(ask);
  return t;
}

/// Ids of the events of one type, in order.
inline std::vector<Uuid> subjects(const std::vector<Event>& ev, EventType type) {
  std::vector<Uuid> out;
  for (const Event& e : ev) {
    if (e.type == type) out.push_back(e.subject);
  }
  return out;
}

/// What a database holding the book's logged changes knows: each group's last extreme and the
/// group it melded into; a member's extreme is its group's root's (the restart's union-find).
class GroupRows {
 public:
  void apply(const std::vector<TrailGroupChange>& changes) {
    for (const TrailGroupChange& c : changes) {
      Row& r = rows_[c.group];
      r.extreme = c.extreme;
      if (!c.merged_into.is_nil()) r.merged_into = c.merged_into;
    }
  }
  [[nodiscard]] std::optional<std::int64_t> extreme(Uuid g) const {
    for (int depth = 0; depth < 1'000'000; ++depth) {
      const auto it = rows_.find(g);
      if (it == rows_.end()) return std::nullopt;
      if (it->second.merged_into.is_nil()) return it->second.extreme;
      g = it->second.merged_into;
    }
    return std::nullopt;
  }

 private:
  struct Row {
    std::int64_t extreme = 0;
    Uuid merged_into{};
  };
  std::map<Uuid, Row> rows_;
};

}  // namespace lam::test
