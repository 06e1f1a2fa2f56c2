#pragma once
/// A loader sink that drops the rows of other shards' markets before the matcher sees them: the
/// start-up half of the ownership rule (scaleout/shard.h), whose live half the matcher thread
/// applies to the listener's commands. Market rows are left to the caller (it decides ownership
/// from the market's price feed, ShardMap::market).

#include <cstddef>
#include <utility>

#include "persistence/loader.h"
#include "scaleout/shard.h"

namespace lam::daemon {

/// Wraps the position, alert and order callbacks of `sink`; `skipped` counts what was dropped.
/// `shard` and `skipped` must outlive the load.
[[nodiscard]] inline db::LoadSink shard_filtered(db::LoadSink sink, const ShardMap& shard,
                                                 std::size_t& skipped) {
  if (!shard.sharded()) return sink;
  sink.position = [&shard, &skipped, next = std::move(sink.position)](PositionSpec&& s) {
    if (shard.owns(s.market_id)) return next(std::move(s));
    ++skipped;
  };
  sink.alert = [&shard, &skipped, next = std::move(sink.alert)](AlertSpec&& s) {
    if (shard.owns_alert(s.market_id)) return next(std::move(s));
    ++skipped;
  };
  if (sink.order) {
    sink.order = [&shard, &skipped, next = std::move(sink.order)](OrderSpec&& s) {
      if (shard.owns(s.market_id)) return next(std::move(s));
      ++skipped;
    };
  }
  return sink;
}

}  // namespace lam::daemon
