#pragma once
/// Per-venue pieces behind `make_decoder` and the protocol table (protocol.h). Internal to feeds/.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "feeds/decoder.h"

namespace lam::feeds {

std::unique_ptr<Decoder> make_binance_decoder(SymbolMap symbols);
std::unique_ptr<Decoder> make_bybit_decoder(SymbolMap symbols);
std::unique_ptr<Decoder> make_okx_decoder(SymbolMap symbols);
std::unique_ptr<Decoder> make_hyperliquid_decoder(SymbolMap symbols);
std::unique_ptr<Decoder> make_coinbase_decoder(SymbolMap symbols);
std::unique_ptr<Decoder> make_pyth_decoder(SymbolMap symbols);

/// Subscribe messages for `symbols` on one route, at most `per_msg` topics each.
std::vector<std::string> binance_subscribe(std::string_view route,
                                           const std::vector<std::string>& symbols,
                                           std::size_t per_msg);
std::vector<std::string> bybit_subscribe(const std::vector<std::string>& symbols,
                                         std::size_t per_msg);
std::vector<std::string> okx_subscribe(const std::vector<std::string>& symbols,
                                       std::size_t per_msg);
std::vector<std::string> hyperliquid_subscribe(const std::vector<std::string>& symbols);
std::vector<std::string> coinbase_subscribe(const std::vector<std::string>& symbols,
                                            std::size_t per_msg);
std::vector<std::string> pyth_subscribe(const std::vector<std::string>& ids, std::size_t per_msg);

}  // namespace lam::feeds
