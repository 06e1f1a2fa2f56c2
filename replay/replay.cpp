#include "replay/replay.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "engine/event_json.h"
#include "engine/instruments.h"
#include "engine/matcher.h"
#include "feeds/capture.h"
#include "feeds/decoder.h"
#include "replay/replay_input.h"

namespace lam::app {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kChunk = 8u << 20;     // bytes read per fread
constexpr std::size_t kOutFlush = 1u << 20;  // event bytes buffered before a write
constexpr std::size_t kMaxLine = 1u << 20;   // a longer line is bad input

class Output {
 public:
  explicit Output(const std::string& path) {
    if (path.empty() || path == "-") {
      fp_ = stdout;
    } else {
      fp_ = std::fopen(path.c_str(), "wb");
      if (fp_ == nullptr)
        throw std::runtime_error(path + ": cannot open for writing: " + std::strerror(errno));
      owned_ = true;
    }
    buf_.reserve(kOutFlush + 4096);
  }
  ~Output() {
    if (owned_) std::fclose(fp_);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  std::string& buf() { return buf_; }
  void maybe_flush() {
    if (buf_.size() >= kOutFlush) flush();
  }
  void flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), fp_) != buf_.size()) {
      throw std::runtime_error("cannot write events: " + std::string(std::strerror(errno)));
    }
    buf_.clear();
    std::fflush(fp_);
  }

 private:
  std::FILE* fp_ = nullptr;
  bool owned_ = false;
  std::string buf_;
};

void write_state(const std::string& path, const Matcher& m) {
  // Long: the state file's format, one block per record type written in the order replay reads
  // them.
  std::string s;
  s.reserve(1 << 16);
  s.append("{\"positions\":[");
  bool first = true;
  auto opt_time = [&](const std::optional<TimeNs>& t) {
    if (!t) {
      s.append("null");
      return;
    }
    s.push_back('"');
    append_iso8601_ms(s, *t);
    s.push_back('"');
  };
  auto opt_price = [&](const std::optional<std::int64_t>& p) {
    if (!p) {
      s.append("null");
      return;
    }
    s.push_back('"');
    append_fixed(s, *p);
    s.push_back('"');
  };
  auto id_or_null = [&](const std::optional<Uuid>& u) {
    if (!u) {
      s.append("null");
      return;
    }
    s.push_back('"');
    u->append_to(s);
    s.push_back('"');
  };
  auto wide = [&](const char* key, Wide v) {
    s.append(",\"").append(key).append("\":\"");
    append_fixed(s, v);
    s.push_back('"');
  };
  m.for_each_position([&](const PositionView& v) {
    s.append(first ? "\n" : ",\n");
    first = false;
    s.append("{\"id\":\"");
    v.id.append_to(s);
    s.append("\",\"status\":\"").append(to_string(v.status)).append("\"");
    s.append(",\"side\":\"").append(v.side == Side::long_side ? "long" : "short").append("\"");
    wide("size", v.size);
    wide("entry_price", v.entry_price);
    wide("margin", v.margin);
    s.append(",\"current_price\":");
    opt_price(v.current_price);
    s.append(",\"unrealized_pnl\":\"");
    append_fixed(s, v.unrealized_pnl, kPnlDigits);
    s.append("\",\"realized_pnl\":\"");
    append_fixed(s, v.realized_pnl);
    s.append("\",\"closed_at\":");
    opt_time(v.closed_at);
    s.push_back('}');
  });
  s.append("\n],\"alerts\":[");
  first = true;
  m.for_each_alert([&](const AlertView& v) {
    s.append(first ? "\n" : ",\n");
    first = false;
    s.append("{\"id\":\"");
    v.id.append_to(s);
    s.append("\",\"status\":\"").append(to_string(v.status)).append("\",\"triggered_at\":");
    opt_time(v.triggered_at);
    s.append(",\"anchor_price\":");
    opt_price(v.anchor_price);
    s.push_back('}');
  });
  s.append("\n],\"orders\":[");
  first = true;
  std::string trades;
  m.for_each_order([&](const OrderView& v) {
    s.append(first ? "\n" : ",\n");
    first = false;
    s.append("{\"id\":\"");
    v.id.append_to(s);
    s.append("\",\"status\":\"").append(to_string(v.status)).append("\",\"status_reason\":");
    if (v.reason == RejectReason::none) {
      s.append("null");
    } else {
      s.append("\"").append(reason_code(v.reason)).append("\"");
    }
    wide("filled_size", v.filled_size);
    s.append(",\"avg_fill_price\":");
    opt_price(v.avg_fill_price);
    wide("total_fees", v.total_fees);
    s.append(",\"position_id\":");
    id_or_null(v.position_id);
    s.append(",\"triggered_at\":");
    opt_time(v.triggered_at);
    s.append(",\"filled_at\":");
    opt_time(v.filled_at);
    if (v.opened_by) {  // placed by the engine in this run (a protective stop): its whole row
      const OrderSpec o = *m.order_spec(v.id);
      s.append(",\"user_id\":");
      id_or_null(o.user_id);
      s.append(",\"wallet_id\":");
      id_or_null(o.wallet_id);
      s.append(",\"market_id\":");
      id_or_null(o.market_id);
      s.append(",\"order_type\":\"").append(to_string(o.type)).append("\"");
      s.append(",\"side\":\"").append(to_string(o.side)).append("\",\"execution\":\"paper\"");
      wide("size", o.size);
      s.append(",\"trigger_price\":");
      opt_price(o.trigger_price);
      wide("leverage", o.leverage);
      s.append(",\"opened_by\":");
      id_or_null(v.opened_by);
    }
    if (v.activated_at) {  // a trailing stop that trails: what a restart follows
      s.append(",\"activated_at\":");
      opt_time(v.activated_at);
      s.append(",\"trail_group_id\":");
      id_or_null(v.trail_group);
      s.append(",\"trail_extreme\":");
      opt_price(v.trail_extreme);
    }
    s.push_back('}');
    if (v.status == OrderStatus::filled && v.position_id) {  // one trade per (whole) fill
      std::swap(s, trades);  // s is the trades' list from here to the swap back
      s.append(s.empty() ? "\n" : ",\n");
      s.append("{\"order_id\":\"");
      v.id.append_to(s);
      s.append("\",\"position_id\":");
      id_or_null(v.position_id);
      wide("size", v.filled_size);
      s.append(",\"price\":");
      opt_price(v.avg_fill_price);
      wide("fee", v.total_fees);
      s.append(",\"liquidity\":\"").append(v.liquidity_taker ? "taker" : "maker").append("\"");
      wide("realized_pnl", v.realized_pnl);
      s.append(",\"executed_at\":");
      opt_time(v.filled_at);
      s.push_back('}');
      std::swap(s, trades);
    }
  });
  s.append("\n],\"trades\":[").append(trades).append("\n],\"wallet_balances\":[");
  first = true;
  std::vector<BalanceView> balances;
  m.for_each_balance([&](const BalanceView& b) { balances.push_back(b); });
  std::sort(balances.begin(), balances.end(), [](const BalanceView& a, const BalanceView& b) {
    return a.wallet_id != b.wallet_id ? a.wallet_id < b.wallet_id : a.token.view() < b.token.view();
  });
  for (const BalanceView& b : balances) {
    s.append(first ? "\n" : ",\n");
    first = false;
    s.append("{\"wallet_id\":\"");
    b.wallet_id.append_to(s);
    s.append("\",\"token_symbol\":\"").append(b.token.view()).append("\"");
    wide("balance", b.balance);
    wide("locked_balance", b.locked);
    s.push_back('}');
  }
  s.append("\n]}\n");
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (fp == nullptr)
    throw std::runtime_error(path + ": cannot open for writing: " + std::strerror(errno));
  const bool ok = std::fwrite(s.data(), 1, s.size(), fp) == s.size();
  if (std::fclose(fp) != 0 || !ok) throw std::runtime_error(path + ": write failed");
}

/// `replay: 41.7%  1.1 GiB / 2.6 GiB  2.9M ticks/s  18,204 events  ETA 0:42`, redrawn in place
/// (`\r`) at most 4 times a second, only when `out` is a terminal: a log or a pipe gets nothing.
class ProgressLine {
 public:
  ProgressLine(std::FILE* out, bool wanted, std::uint64_t total_bytes)
      : out_(out),
        on_(wanted && out != nullptr && ::isatty(::fileno(out)) == 1),
        total_(total_bytes),
        start_(Clock::now()) {}

  [[nodiscard]] bool on() const noexcept { return on_; }

  void update(std::uint64_t done, std::uint64_t ticks, std::uint64_t events, bool last = false) {
    if (!on_) return;
    const auto now = Clock::now();
    if (!last && drawn_ && now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    drawn_ = true;
    const double secs = std::max(1e-3, std::chrono::duration<double>(now - start_).count());
    const double frac =
        total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    char eta[32] = "--:--";
    if (frac > 0.001 && !last) {
      const auto left = static_cast<long long>(secs * (1.0 - frac) / frac);
      std::snprintf(eta, sizeof eta, "%lld:%02lld", left / 60, left % 60);
    } else if (last) {
      std::snprintf(eta, sizeof eta, "done in %.1f s", secs);
    }
    std::fprintf(out_, "\rreplay: %5.1f%%  %s / %s  %s ticks/s  %llu events  %s%s\x1b[K",
                 100.0 * frac, bytes(done).c_str(), bytes(total_).c_str(),
                 rate(static_cast<double>(ticks) / secs).c_str(),
                 static_cast<unsigned long long>(events), last ? "" : "ETA ", eta);
    if (last) std::fputc('\n', out_);
    std::fflush(out_);
  }

 private:
  static std::string bytes(std::uint64_t b) {
    char buf[32];
    const double v = static_cast<double>(b);
    if (b >= (1ULL << 30)) {
      std::snprintf(buf, sizeof buf, "%.1f GiB", v / (1ULL << 30));
    } else if (b >= (1ULL << 20)) {
      std::snprintf(buf, sizeof buf, "%.1f MiB", v / (1ULL << 20));
    } else {
      std::snprintf(buf, sizeof buf, "%.0f KiB", v / 1024);
    }
    return buf;
  }
  static std::string rate(double r) {
    char buf[32];
    if (r >= 1e6) {
      std::snprintf(buf, sizeof buf, "%.1fM", r / 1e6);
    } else if (r >= 1e3) {
      std::snprintf(buf, sizeof buf, "%.0fk", r / 1e3);
    } else {
      std::snprintf(buf, sizeof buf, "%.0f", r);
    }
    return buf;
  }

  std::FILE* out_;
  bool on_;
  std::uint64_t total_;
  Clock::time_point start_, last_{};
  bool drawn_ = false;
};

std::uint64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

class Diagnostics {
 public:
  Diagnostics(std::FILE* fp, std::size_t limit) : fp_(fp), limit_(limit) {}
  void report(const std::string& where, const std::string& what) {
    if (printed_++ < limit_) {
      std::fprintf(fp_, "%s: %s\n", where.c_str(), what.c_str());
    } else if (printed_ == limit_ + 1) {
      std::fprintf(fp_, "(further input errors are counted but not printed)\n");
    }
  }

 private:
  std::FILE* fp_;
  std::size_t limit_;
  std::size_t printed_ = 0;
};

/// Captured frames -> venue parsers -> matcher, merged across files by receive time (ties: file
/// order). Decoders are per (venue, route) and reset where the capture says a connection opened.
template <class Drain>
void replay_raw(const ReplayOptions& opt, InstrumentTable& instruments, Matcher& matcher,
                std::vector<Event>& events, ReplaySummary& sum, Diagnostics& diags, Drain& drain,
                std::FILE* diag) {
  std::uint64_t total = 0;
  for (const std::string& path : opt.raw_paths) total += file_bytes(path);
  ProgressLine progress(diag, opt.progress, total);
  const std::size_t market_instruments = instruments.size();
  struct Source {
    std::unique_ptr<feeds::CaptureReader> reader;
    feeds::CaptureRecord rec;
    bool has = false;
  };
  std::vector<Source> sources;
  for (const std::string& path : opt.raw_paths) {
    Source s;
    s.reader = std::make_unique<feeds::CaptureReader>(path);
    s.has = s.reader->next(s.rec);
    sources.push_back(std::move(s));
  }
  std::map<std::string, std::unique_ptr<feeds::Decoder>> decoders;
  std::vector<feeds::FeedEvent> out;
  std::string padded;
  std::set<InstrumentId> unknown;  // symbols already reported
  // Per instrument: 0 not judged yet, 1 served, 2 an inverse contract (the symbol's parse once,
  // not per tick).
  std::vector<std::uint8_t> inverse_of;
  for (;;) {
    Source* next = nullptr;
    for (Source& s : sources) {
      if (s.has && (next == nullptr || s.rec.recv < next->rec.recv)) next = &s;
    }
    if (next == nullptr) break;
    const feeds::CaptureRecord& rec = next->rec;
    const auto venue = feeds::parse_venue(rec.venue);
    if (!venue) {
      diags.report("capture", "unknown venue '" + rec.venue + "'");
      ++sum.bad_lines;
    } else {
      auto& dec = decoders[rec.venue + "/" + rec.route];
      if (!dec) {
        feeds::SymbolMap map(*venue, &instruments);
        for (const auto& [key, size] : opt.contract_sizes) {
          if (key.starts_with(rec.venue + ":")) {
            map.add(instruments, std::string_view(key).substr(rec.venue.size() + 1), size);
          }
        }
        dec = feeds::make_decoder(*venue, std::move(map));
      }
      if (rec.type == feeds::CaptureRecord::Type::opened) {
        dec->reset();
      } else if (rec.type == feeds::CaptureRecord::Type::symbol) {
        // The contract size the live daemon had (the command line wins: it corrects captures).
        if (!opt.contract_sizes.contains(rec.venue + ":" + rec.data)) {
          dec->symbols().add(instruments, rec.data, rec.contract_size);
        }
      } else {
        ++sum.lines;
        padded.assign(rec.data);
        padded.append(feeds::kFramePadding, '\0');
        out.clear();
        const auto r = dec->decode(padded.data(), rec.data.size(), padded.size(), rec.recv, out);
        if (r.cls == feeds::FrameClass::malformed) {
          ++sum.bad_lines;
          diags.report(rec.venue + "/" + rec.route + " frame " + std::to_string(sum.lines),
                       "malformed frame skipped");
        }
        const std::string where =
            rec.venue + "/" + rec.route + " frame " + std::to_string(sum.lines);
        for (const feeds::FeedEvent& e : out) {
          const InstrumentId id = e.tick.instrument;
          const bool ours = id < market_instruments;
          if (e.kind == feeds::FeedEventKind::gap) {
            // The capture missed venue data here: fires around it may differ from live (a volume
            // window short of trades); counted and reported, the replay goes on.
            ++sum.gaps;
            sum.gap_ids += e.count;
            diags.report(where, "sequence gap: " + std::to_string(e.count) + " id(s) missed on " +
                                    (id < instruments.size() ? instruments.symbol(id) : "?"));
            continue;
          }
          if (e.kind == feeds::FeedEventKind::state &&
              (e.reason == feeds::FeedReason::oracle_stale ||
               e.reason == feeds::FeedReason::oracle_uncertain)) {
            // An oracle update too old or too uncertain: its price held, as live (issue 33).
            ++(e.reason == feeds::FeedReason::oracle_stale ? sum.oracle_stale
                                                           : sum.oracle_uncertain);
            continue;
          }
          if (e.kind != feeds::FeedEventKind::tick) continue;
          if (!ours) {
            // Ticks of symbols no market trades on are not input errors, just not ours: counted,
            // and each symbol named once.
            ++sum.unknown_symbol_ticks;
            if (unknown.insert(id).second) {
              ++sum.unknown_symbols;
              diags.report(where, "no market trades " + rec.venue + "/" + instruments.symbol(id) +
                                      " (its ticks are counted, not replayed)");
            }
            continue;
          }
          if (inverse_of.size() <= id) inverse_of.resize(id + 1, 0);
          const bool judged = inverse_of[id] != 0;
          if (!judged) {
            inverse_of[id] =
                feeds::size_unit(*venue, instruments.symbol(id)) == feeds::SizeUnit::inverse ? 2
                                                                                             : 1;
          }
          if (inverse_of[id] == 2) {
            // The daemon never serves an inverse contract (docs/feeds.md): replay neither, so the
            // two agree (issue 33: replay priced these markets).
            ++sum.inverse_ticks;
            if (!judged) {
              diags.report(where, rec.venue + "/" + instruments.symbol(id) +
                                      " is an inverse contract (contracts of a fixed quote "
                                      "value): not served, as the daemon does not (its ticks are "
                                      "counted, not replayed)");
            }
            continue;
          }
          if ((e.tick.flags & feeds::kTickNoSize) != 0 && sum.unsized_trades++ == 0) {
            diags.report(where, "trades of " + rec.venue + "/" + instruments.symbol(id) +
                                    " are in contracts of an unknown size: replayed without "
                                    "sizes (record with this version, or pass --contract-size " +
                                    rec.venue + ":" + instruments.symbol(id) + "=SIZE)");
          }
          if (!opt.validate_only) matcher.on_tick(e.tick, events);
          ++sum.ticks;
          if (!events.empty()) drain();
        }
      }
    }
    next->has = next->reader->next(next->rec);
    if (progress.on() && (sum.lines & 0x3FF) == 0) {
      std::uint64_t done = 0;
      for (const Source& s : sources) done += s.reader->offset();
      progress.update(done, sum.ticks, sum.events);
    }
  }
  progress.update(total, sum.ticks, sum.events, /*last=*/true);
}

}  // namespace

std::optional<std::pair<std::string, std::int64_t>> parse_contract_size(std::string_view spec,
                                                                        std::string* why) {
  const auto fail = [why](std::string text) {
    if (why != nullptr) *why = std::move(text);
    return std::nullopt;
  };
  const std::size_t colon = spec.find(':');
  const std::size_t eq = spec.rfind('=');
  const auto venue =
      colon == std::string_view::npos ? std::nullopt : feeds::parse_venue(spec.substr(0, colon));
  if (colon == std::string_view::npos || eq == std::string_view::npos || colon == 0 ||
      eq <= colon + 1 || !venue) {
    return fail("expected VENUE:SYMBOL=SIZE, SIZE > 0");
  }
  const auto size = parse_raw(spec.substr(eq + 1));
  if (!size || *size <= 0) return fail("expected VENUE:SYMBOL=SIZE, SIZE > 0");
  const std::string_view symbol = spec.substr(colon + 1, eq - colon - 1);
  if (feeds::size_unit(*venue, symbol) == feeds::SizeUnit::inverse) {
    // Sizes in contracts of a fixed quote value (size in coin = contracts x value / price): the
    // daemon refuses these markets, so a size for one would only make replay disagree with it.
    return fail(std::string(symbol) +
                " is an inverse contract (contracts of a fixed quote value): not supported, "
                "the daemon refuses it too (docs/feeds.md)");
  }
  return std::make_pair(std::string(spec.substr(0, eq)), *size);
}

ReplaySummary run_replay(const ReplayOptions& opt, std::FILE* diag) {
  // Long: replay's steps in order (state, ticks, matcher, events, the rows file, the summary), each
  // a few lines that share the matcher and the output files; read top to bottom as the daemon's own
  // sequence.
  const auto start = Clock::now();
  ReplaySummary sum;
  Diagnostics diags(diag, opt.max_error_lines);

  StateInput st = load_state(opt.state_path);
  for (const std::string& e : st.errors) diags.report("bad input", e);
  sum.bad_state_rows = st.errors.size();

  InstrumentTable instruments;
  MatcherConfig mc;
  mc.slippage_bps = opt.slippage_bps;
  Matcher matcher(mc);
  std::vector<Event> events;
  events.reserve(1024);
  Output out(opt.write_events ? opt.events_out : std::string());

  auto drain = [&] {
    for (const Event& e : events) {
      ++sum.events;
      ++sum.events_by_type[static_cast<std::size_t>(e.type)];
      if (opt.write_events) {
        append_event_json(out.buf(), e);
        out.buf().push_back('\n');
      }
    }
    events.clear();
    if (opt.write_events) out.maybe_flush();
  };

  for (MarketRow& m : st.markets) {
    const PriceFeed f = price_feed(m);
    m.spec.instrument = instruments.intern(f.venue, f.symbol);
    matcher.upsert_market(m.spec);
  }
  for (const BalanceSpec& b : st.balances) matcher.upsert_balance(b);
  for (const PositionSpec& p : st.positions) matcher.upsert_position(p, events);
  for (const AlertSpec& a : st.alerts) matcher.upsert_alert(a, events);
  for (const UserSettingRow& s : st.settings) matcher.upsert_setting(s, events);
  for (const OrderSpec& o : st.orders) matcher.upsert_order(o, events);
  drain();
  sum.state_seconds = std::chrono::duration<double>(Clock::now() - start).count();

  if (!opt.raw_paths.empty()) {
    replay_raw(opt, instruments, matcher, events, sum, diags, drain, diag);
    if (opt.write_events) out.flush();
    if (!opt.state_out.empty()) write_state(opt.state_out, matcher);
    sum.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return sum;
  }

  std::FILE* in = std::fopen(opt.ticks_path.c_str(), "rb");
  if (in == nullptr)
    throw std::runtime_error(opt.ticks_path + ": cannot open: " + std::strerror(errno));
  TickLineParser parser;
  const std::size_t pad = TickLineParser::padding();
  std::vector<char> buf(kChunk + kMaxLine + pad);
  std::size_t have = 0;  // bytes of buf holding unread input
  bool eof = false;
  std::string error;
  TickLine line;
  ProgressLine progress(diag, opt.progress, file_bytes(opt.ticks_path));
  std::uint64_t consumed = 0;  // bytes of the file before buf[0]

  while (!eof || have > 0) {
    if (!eof) {
      const std::size_t n = std::fread(buf.data() + have, 1, buf.size() - pad - have, in);
      if (n == 0) {
        if (std::ferror(in)) {
          std::fclose(in);
          throw std::runtime_error(opt.ticks_path + ": read error");
        }
        eof = true;
      }
      have += n;
    }
    std::memset(buf.data() + have, 0, pad);
    std::size_t pos = 0;
    while (pos < have) {
      const char* begin = buf.data() + pos;
      const void* nl = std::memchr(begin, '\n', have - pos);
      if (nl == nullptr && !eof) break;  // partial line: read more first
      const std::size_t len = nl != nullptr
                                  ? static_cast<std::size_t>(static_cast<const char*>(nl) - begin)
                                  : have - pos;
      pos += len + (nl != nullptr ? 1 : 0);
      ++sum.lines;
      std::size_t trimmed = len;
      while (trimmed > 0 && (begin[trimmed - 1] == '\r' || begin[trimmed - 1] == ' ')) --trimmed;
      if (trimmed == 0) continue;  // blank lines are allowed
      const std::size_t capacity = static_cast<std::size_t>(buf.data() + buf.size() - begin);
      if (!parser.parse(begin, trimmed, capacity, line, error)) {
        ++sum.bad_lines;
        diags.report(opt.ticks_path + ":" + std::to_string(sum.lines), error);
        continue;
      }
      const auto id = instruments.find(line.venue, line.symbol);
      if (!id) {
        ++sum.bad_lines;
        diags.report(opt.ticks_path + ":" + std::to_string(sum.lines),
                     "unknown market " + std::string(line.venue) + "/" + std::string(line.symbol));
        continue;
      }
      Tick t;
      t.exch_ts = line.ts;
      t.instrument = *id;
      t.kind = line.kind;
      t.price = line.price;
      t.size = line.size;
      t.ask = line.ask;
      if (!opt.validate_only) matcher.on_tick(t, events);
      ++sum.ticks;
      if (!events.empty()) drain();
      if (progress.on() && (sum.lines & 0x3FFF) == 0) {
        progress.update(consumed + pos, sum.ticks, sum.events);
      }
    }
    if (pos < have) {
      if (have - pos > kMaxLine) {
        std::fclose(in);
        throw std::runtime_error(opt.ticks_path + ":" + std::to_string(sum.lines + 1) +
                                 ": line longer than 1 MiB");
      }
      std::memmove(buf.data(), buf.data() + pos, have - pos);
    }
    have -= pos;
    consumed += pos;
  }
  std::fclose(in);
  progress.update(consumed, sum.ticks, sum.events, /*last=*/true);
  if (opt.write_events) out.flush();
  if (!opt.state_out.empty()) write_state(opt.state_out, matcher);
  sum.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return sum;
}

std::string format_summary(const ReplaySummary& s) {
  char buf[768];
  std::snprintf(
      buf, sizeof buf,
      "replay: %llu lines, %llu ticks, %llu bad lines, %llu bad state rows in %.3f s (%.0f "
      "ticks/s)\n"
      "events: %llu total: %llu alert.triggered, %llu position.liquidated, %llu alert.expired, "
      "%llu alert.rejected, %llu alert.anchored, %llu position.rejected\n",
      static_cast<unsigned long long>(s.lines), static_cast<unsigned long long>(s.ticks),
      static_cast<unsigned long long>(s.bad_lines),
      static_cast<unsigned long long>(s.bad_state_rows), s.seconds,
      s.seconds > 0 ? static_cast<double>(s.ticks) / s.seconds : 0.0,
      static_cast<unsigned long long>(s.events),
      static_cast<unsigned long long>(s.events_by_type[0]),
      static_cast<unsigned long long>(s.events_by_type[4]),
      static_cast<unsigned long long>(s.events_by_type[1]),
      static_cast<unsigned long long>(s.events_by_type[2]),
      static_cast<unsigned long long>(s.events_by_type[3]),
      static_cast<unsigned long long>(s.events_by_type[5]));
  std::string text = buf;
  if (s.unknown_symbol_ticks > 0 || s.gaps > 0 || s.unsized_trades > 0 || s.inverse_ticks > 0 ||
      s.oracle_stale > 0 || s.oracle_uncertain > 0) {
    std::snprintf(buf, sizeof buf,
                  "captures: %llu ticks of %llu symbol(s) no market trades, %llu sequence gap(s) "
                  "missing %llu id(s), %llu trade(s) without a size (contract size unknown), "
                  "%llu tick(s) of inverse contracts not served, %llu oracle update(s) held as "
                  "too old, %llu as too uncertain\n",
                  static_cast<unsigned long long>(s.unknown_symbol_ticks),
                  static_cast<unsigned long long>(s.unknown_symbols),
                  static_cast<unsigned long long>(s.gaps),
                  static_cast<unsigned long long>(s.gap_ids),
                  static_cast<unsigned long long>(s.unsized_trades),
                  static_cast<unsigned long long>(s.inverse_ticks),
                  static_cast<unsigned long long>(s.oracle_stale),
                  static_cast<unsigned long long>(s.oracle_uncertain));
    text += buf;
  }
  return text;
}

}  // namespace lam::app
