// Subscribe message builders, one per venue. Symbols come from config and are plain
// [A-Za-z0-9@:/._-] spellings; anything else is escaped so a message is always valid JSON.
#include <cctype>

#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(kHex[(c >> 4) & 0xF]);
      out.push_back(kHex[c & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

/// Splits `topics` into messages of at most `per`, each built by `wrap(list_json)`.
template <class Wrap>
std::vector<std::string> chunked(const std::vector<std::string>& topics, std::size_t per,
                                 Wrap wrap) {
  std::vector<std::string> msgs;
  for (std::size_t i = 0; i < topics.size(); i += per) {
    std::string list;
    for (std::size_t j = i; j < topics.size() && j < i + per; ++j) {
      if (j > i) list.push_back(',');
      list += topics[j];
    }
    msgs.push_back(wrap(list, msgs.size() + 1));
  }
  return msgs;
}

std::string quoted(std::string_view s) {
  std::string r;
  append_json_string(r, s);
  return r;
}

}  // namespace

std::vector<std::string> binance_subscribe(std::string_view route,
                                           const std::vector<std::string>& symbols,
                                           std::size_t per_msg) {
  std::vector<std::string> topics;
  for (const std::string& s : symbols) {
    const std::string l = lower(s);
    if (route == "public") {
      topics.push_back(quoted(l + "@bookTicker"));
    } else {
      topics.push_back(quoted(l + "@markPrice@1s"));
      topics.push_back(quoted(l + "@aggTrade"));
    }
  }
  return chunked(topics, per_msg, [](const std::string& list, std::size_t id) {
    return R"({"method":"SUBSCRIBE","params":[)" + list + R"(],"id":)" + std::to_string(id) + "}";
  });
}

std::vector<std::string> bybit_subscribe(const std::vector<std::string>& symbols,
                                         std::size_t per_msg) {
  std::vector<std::string> topics;
  for (const std::string& s : symbols) {
    topics.push_back(quoted("tickers." + s));
    topics.push_back(quoted("publicTrade." + s));
  }
  return chunked(topics, per_msg, [](const std::string& list, std::size_t id) {
    return R"({"req_id":"sub-)" + std::to_string(id) + R"(","op":"subscribe","args":[)" + list +
           "]}";
  });
}

std::vector<std::string> okx_subscribe(const std::vector<std::string>& symbols,
                                       std::size_t per_msg) {
  std::vector<std::string> topics;
  for (const std::string& s : symbols) {
    for (const char* ch : {"mark-price", "tickers", "trades"}) {
      topics.push_back(std::string(R"({"channel":")") + ch + R"(","instId":)" + quoted(s) + "}");
    }
  }
  return chunked(topics, per_msg, [](const std::string& list, std::size_t id) {
    return R"({"id":"sub)" + std::to_string(id) + R"(","op":"subscribe","args":[)" + list + "]}";
  });
}

std::vector<std::string> hyperliquid_subscribe(const std::vector<std::string>& symbols) {
  std::vector<std::string> msgs;
  msgs.emplace_back(R"({"method":"subscribe","subscription":{"type":"allMids"}})");
  for (const std::string& s : symbols) {
    for (const char* type : {"activeAssetCtx", "trades"}) {
      msgs.push_back(std::string(R"({"method":"subscribe","subscription":{"type":")") + type +
                     R"(","coin":)" + quoted(s) + "}}");
    }
  }
  return msgs;
}

std::vector<std::string> coinbase_subscribe(const std::vector<std::string>& symbols,
                                            std::size_t per_msg) {
  // Heartbeats first: without them quiet channels are closed after 60-90 s.
  std::vector<std::string> msgs{R"({"type":"subscribe","channel":"heartbeats"})"};
  std::vector<std::string> products;
  for (const std::string& s : symbols) products.push_back(quoted(s));
  for (std::string& m : chunked(products, per_msg, [](const std::string&list, std::size_t) {
         return R"({"type":"subscribe","product_ids":[)" + list + R"(],"channel":"ticker"})";
       })) {
    msgs.push_back(std::move(m));
  }
  // Trades with their sizes (the ticker has none); one channel per message.
  for (std::string& m : chunked(products, per_msg, [](const std::string&list, std::size_t) {
         return R"({"type":"subscribe","product_ids":[)" + list + R"(],"channel":"market_trades"})";
       })) {
    msgs.push_back(std::move(m));
  }
  return msgs;
}

std::vector<std::string> pyth_subscribe(const std::vector<std::string>& ids, std::size_t per_msg) {
  // `verbose` for `metadata.prev_publish_time` (the gap check); no `binary` (the VAA is kilobytes
  // we never read). One unknown id fails the whole request (the venue's rule), so ids go in
  // batches and a rejected batch does not take the others with it.
  std::vector<std::string> quoted_ids;
  for (const std::string& id : ids) quoted_ids.push_back(quoted(id));
  return chunked(quoted_ids, per_msg, [](const std::string& list, std::size_t) {
    return R"({"type":"subscribe","ids":[)" + list + R"(],"verbose":true})";
  });
}

}  // namespace lam::feeds
