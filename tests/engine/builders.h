#pragma once
// Small builders for matcher inputs in tests: ids from integers, decimals from text.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/fixed.h"
#include "engine/tick.h"

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

}  // namespace lam::test
