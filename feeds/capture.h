#pragma once
/// Raw capture of received frames, for `--record DIR` and `laminator replay --raw`.
///
/// File format (text header, raw bytes, so any frame round-trips exactly):
///   F <recv_ns> <venue> <route> <len>\n<len bytes>\n      a received frame
///   O <recv_ns> <venue> <route>\n                         a connection opened (decoders reset)
///   S <recv_ns> <venue> <route> <symbol> <contract_size>\n a symbol's contract size (decimal base
///                                                        units per contract, 0: unknown); after
///                                                        its `O`, and again at the top of every
///                                                        rotated file, for symbols whose sizes
///                                                        are not in base units (OKX SWAP)
/// Files rotate when they exceed `rotate_bytes`: DIR/capture-<start_ns>-<n>.lcap.

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/timefmt.h"

namespace lam::feeds {

/// Writes captures; owned by one feed thread.
class CaptureWriter {
 public:
  /// Creates `dir` if needed. Throws std::runtime_error when it cannot.
  CaptureWriter(std::string dir, std::uint64_t rotate_bytes);
  ~CaptureWriter();
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;

  void frame(TimeNs recv, std::string_view venue, std::string_view route, std::string_view data);
  void opened(TimeNs recv, std::string_view venue, std::string_view route);
  /// Records a symbol's contract size (raw fixed-point) for `laminator replay --raw`; repeated at
  /// the top of every later file, so each file replays alone with the sizes live had.
  void symbol(TimeNs recv, std::string_view venue, std::string_view route, std::string_view symbol,
              std::int64_t contract_size);
  void flush();
  [[nodiscard]] std::uint64_t frames() const noexcept { return frames_; }
  [[nodiscard]] std::uint64_t write_errors() const noexcept { return errors_; }
  [[nodiscard]] const std::vector<std::string>& files() const noexcept { return files_; }

 private:
  void ensure_file(TimeNs now);
  void put(std::string_view s);
  void put_symbol(TimeNs recv, const std::string& key_and_symbol, std::int64_t contract_size);

  std::string dir_;
  std::uint64_t rotate_bytes_;
  std::FILE* fp_ = nullptr;
  std::uint64_t bytes_ = 0;
  std::uint64_t frames_ = 0;
  std::uint64_t errors_ = 0;
  std::vector<std::string> files_;
  /// "venue route symbol" -> contract size, re-written at the top of each new file
  std::map<std::string, std::int64_t> symbols_;
};

struct CaptureRecord {
  enum class Type : std::uint8_t { frame, opened, symbol } type = Type::frame;
  TimeNs recv = 0;
  std::string venue;
  std::string route;
  std::string data;                ///< frame bytes; the symbol for `symbol`; empty for `opened`
  std::int64_t contract_size = 0;  ///< `symbol` only (raw fixed-point; 0: unknown)
};

/// Reads one capture file record by record.
class CaptureReader {
 public:
  /// Throws std::runtime_error when the file cannot be opened.
  explicit CaptureReader(const std::string& path);
  ~CaptureReader();
  CaptureReader(const CaptureReader&) = delete;
  CaptureReader& operator=(const CaptureReader&) = delete;

  /// False at the end; throws std::runtime_error on a corrupt record (with the byte offset).
  bool next(CaptureRecord& rec);
  /// Bytes read so far (progress).
  [[nodiscard]] std::uint64_t offset() const;

 private:
  std::string path_;
  std::FILE* fp_ = nullptr;
};

}  // namespace lam::feeds
