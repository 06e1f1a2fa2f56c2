#include "feeds/capture.h"

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "engine/fixed.h"

namespace lam::feeds {

CaptureWriter::CaptureWriter(std::string dir, std::uint64_t rotate_bytes)
    : dir_(std::move(dir)), rotate_bytes_(rotate_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("capture: cannot create " + dir_ + ": " + ec.message());
}

CaptureWriter::~CaptureWriter() {
  if (fp_ != nullptr) std::fclose(fp_);
}

void CaptureWriter::ensure_file(TimeNs now) {
  if (fp_ != nullptr && bytes_ < rotate_bytes_) return;
  if (fp_ != nullptr) std::fclose(fp_);
  std::string path = dir_;
  path += "/capture-";
  path += std::to_string(now);
  path += '-';
  path += std::to_string(files_.size());
  path += ".lcap";
  fp_ = std::fopen(path.c_str(), "wb");
  bytes_ = 0;
  if (fp_ == nullptr) {
    ++errors_;
    return;
  }
  files_.push_back(std::move(path));
  for (const auto& [key, size] : symbols_) put_symbol(now, key, size);
}

void CaptureWriter::put_symbol(TimeNs recv, const std::string& key_and_symbol,
                               std::int64_t contract_size) {
  std::string line = "S ";
  line += std::to_string(recv);
  line += ' ';
  line += key_and_symbol;
  line += ' ';
  line += format_fixed(contract_size);
  line += '\n';
  put(line);
}

void CaptureWriter::symbol(TimeNs recv, std::string_view venue, std::string_view route,
                           std::string_view symbol, std::int64_t contract_size) {
  // Names with blanks or newlines would break the line format; no venue spells symbols so.
  for (std::string_view part : {venue, route, symbol}) {
    if (part.empty() || part.size() > 63 || part.find_first_of(" \n\r\t") != part.npos) return;
  }
  std::string key(venue);
  key += ' ';
  key.append(route);
  key += ' ';
  key.append(symbol);
  ensure_file(recv);
  put_symbol(recv, key, contract_size);
  symbols_[std::move(key)] = contract_size;
}

void CaptureWriter::put(std::string_view s) {
  if (fp_ == nullptr) return;
  if (std::fwrite(s.data(), 1, s.size(), fp_) != s.size()) ++errors_;
  bytes_ += s.size();
}

void CaptureWriter::frame(TimeNs recv, std::string_view venue, std::string_view route,
                          std::string_view data) {
  ensure_file(recv);
  char head[160];
  const int n = std::snprintf(head, sizeof head, "F %" PRId64 " %.*s %.*s %zu\n", recv,
                              static_cast<int>(venue.size()), venue.data(),
                              static_cast<int>(route.size()), route.data(), data.size());
  put(std::string_view(head, static_cast<std::size_t>(n)));
  put(data);
  put("\n");
  ++frames_;
}

void CaptureWriter::opened(TimeNs recv, std::string_view venue, std::string_view route) {
  ensure_file(recv);
  char head[160];
  const int n = std::snprintf(head, sizeof head, "O %" PRId64 " %.*s %.*s\n", recv,
                              static_cast<int>(venue.size()), venue.data(),
                              static_cast<int>(route.size()), route.data());
  put(std::string_view(head, static_cast<std::size_t>(n)));
}

void CaptureWriter::flush() {
  if (fp_ != nullptr && std::fflush(fp_) != 0) ++errors_;
}

CaptureReader::CaptureReader(const std::string& path) : path_(path) {
  fp_ = std::fopen(path.c_str(), "rb");
  if (fp_ == nullptr) {
    throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  }
}

CaptureReader::~CaptureReader() {
  if (fp_ != nullptr) std::fclose(fp_);
}

std::uint64_t CaptureReader::offset() const {
  const long at = std::ftell(fp_);
  return at < 0 ? 0 : static_cast<std::uint64_t>(at);
}

bool CaptureReader::next(CaptureRecord& rec) {
  char line[256];
  const long at = std::ftell(fp_);
  if (std::fgets(line, sizeof line, fp_) == nullptr) return false;
  auto corrupt = [&](const char* what) {
    return std::runtime_error(path_ + ": corrupt capture at byte " + std::to_string(at) + ": " +
                              what);
  };
  char venue[64], route[64], symbol[64], size[64];
  long long recv = 0;
  std::size_t len = 0;
  if (line[0] == 'S') {
    if (std::sscanf(line, "S %lld %63s %63s %63s %63s", &recv, venue, route, symbol, size) != 5) {
      throw corrupt("header");
    }
    const auto cs = parse_raw(size);
    if (!cs || *cs < 0) throw corrupt("contract size");
    rec.type = CaptureRecord::Type::symbol;
    rec.data = symbol;
    rec.contract_size = *cs;
  } else if (line[0] == 'O') {
    if (std::sscanf(line, "O %lld %63s %63s", &recv, venue, route) != 3) throw corrupt("header");
    rec.type = CaptureRecord::Type::opened;
    rec.data.clear();
  } else if (line[0] == 'F') {
    if (std::sscanf(line, "F %lld %63s %63s %zu", &recv, venue, route, &len) != 4) {
      throw corrupt("header");
    }
    if (len > (std::size_t{64} << 20)) throw corrupt("frame longer than 64 MiB");
    rec.type = CaptureRecord::Type::frame;
    rec.data.resize(len);
    if (std::fread(rec.data.data(), 1, len, fp_) != len || std::fgetc(fp_) != '\n') {
      throw corrupt("truncated frame");
    }
  } else {
    throw corrupt("unknown record type");
  }
  rec.recv = recv;
  rec.venue = venue;
  rec.route = route;
  return true;
}

}  // namespace lam::feeds
