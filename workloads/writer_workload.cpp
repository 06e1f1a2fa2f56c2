#include "workloads/writer_workload.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <tuple>

#include "engine/fixed.h"
#include "engine/matcher.h"
#include "persistence/migrator.h"
#include "persistence/seed_rows.h"

namespace lam::bench {

const char* method_name(WriteMethod m) {
  switch (m) {
    case WriteMethod::unnest_batch:
      return "unnest_batch";
    case WriteMethod::copy_temp_update:
      return "copy_temp_update";
    case WriteMethod::update_per_row:
      return "update_per_row";
  }
  return "?";
}

const char* method_label(WriteMethod m) {
  switch (m) {
    case WriteMethod::unnest_batch:
      return "UNNEST statement (the engine's)";
    case WriteMethod::copy_temp_update:
      return "COPY to a temp table + UPDATE";
    case WriteMethod::update_per_row:
      return "UPDATE per row (baseline)";
  }
  return "?";
}

void prepare_writer_db(const std::string& url, long long rows) {
  db::Migrator(url).migrate({});
  db::seed(url, 1000, rows);
  pqxx::connection c(url);
  pqxx::nontransaction n(c);
  n.exec("VACUUM ANALYZE positions");
}

std::vector<db::WriteOp> writer_marks(std::size_t n, long long rows, std::mt19937_64& rng) {
  if (static_cast<long long>(n) > rows)
    throw std::invalid_argument("a batch larger than the table");
  std::set<long long> unique;
  while (unique.size() < n) unique.insert(1 + static_cast<long long>(rng() % rows));
  std::vector<db::WriteOp> ops;
  ops.reserve(n);
  for (const long long id : unique) {
    db::WriteOp op;
    op.kind = db::WriteKind::position_mark;
    op.id = db::seq_id(db::kPosition, id);
    op.price = static_cast<std::int64_t>(1000 + rng() % 1000) * kScale +
               static_cast<std::int64_t>(rng() % kScale);
    op.amount =
        static_cast<Wide>(static_cast<std::int64_t>(rng() % 100'000'000'000)) * 1'000'000'000 + 123;
    ops.push_back(op);
  }
  return ops;
}

MarkWriter::MarkWriter(const std::string& url, WriteMethod m)
    : c_(std::make_unique<pqxx::connection>(url)), m_(m) {
  pqxx::nontransaction(*c_).exec("SET app.origin = 'engine'");
  switch (m_) {
    case WriteMethod::unnest_batch:
      db::prepare_batch(*c_);
      break;
    case WriteMethod::copy_temp_update:
      pqxx::nontransaction(*c_).exec(
          "CREATE TEMP TABLE tmp_marks (id uuid, price numeric(36,18), pnl numeric(36,18)) ON "
          "COMMIT DELETE ROWS");
      break;
    case WriteMethod::update_per_row:
      c_->prepare("one",
                  "UPDATE positions SET current_price = $2, unrealized_pnl = $3, updated_at = "
                  "now() WHERE id = $1 AND status = 'open'");
      break;
  }
}

std::size_t MarkWriter::apply(const std::vector<db::WriteOp>& ops) {
  switch (m_) {
    case WriteMethod::unnest_batch: {
      db::Batch b;
      for (const auto& op : ops) b.add(op);  // coalescing and SQL building are part of the cost
      pqxx::nontransaction tx(*c_);
      return db::apply_batch(tx, b).marks_applied;
    }
    case WriteMethod::copy_temp_update: {
      pqxx::work w(*c_);
      {
        pqxx::stream_to s(w, "tmp_marks", std::vector<std::string>{"id", "price", "pnl"});
        for (const auto& op : ops) {
          s << std::make_tuple(op.id.str(), format_fixed(op.price), format_fixed(op.amount, 18));
        }
        s.complete();
      }
      const auto r = w.exec(
          "UPDATE positions p SET current_price = t.price, unrealized_pnl = t.pnl, updated_at = "
          "now() FROM tmp_marks t WHERE p.id = t.id AND p.status = 'open'");
      w.commit();
      return static_cast<std::size_t>(r.affected_rows());
    }
    case WriteMethod::update_per_row: {
      pqxx::work w(*c_);
      std::size_t rows = 0;
      for (const auto& op : ops) {
        rows +=
            w.exec_prepared("one", op.id.str(), format_fixed(op.price), format_fixed(op.amount, 18))
                .affected_rows();
      }
      w.commit();
      return rows;
    }
  }
  return 0;
}

void MarkWriter::verify(const db::WriteOp& last) {
  pqxx::read_transaction t(*c_);
  const auto r =
      t.exec_params("SELECT current_price::text FROM positions WHERE id = $1::uuid", last.id.str());
  if (r.empty() || r[0][0].is_null() ||
      r[0][0].as<std::string>().rfind(format_fixed(last.price / kScale, 0), 0) != 0) {
    throw std::runtime_error("the last batch's marks are not in the table");
  }
}

void prepare_fills(const std::string& url, int markets, long long orders) {
  if (orders / kFillUsers + 2 >= markets)
    throw std::invalid_argument("prepare_fills: too many orders for the markets");
  pqxx::connection c(url);
  pqxx::nontransaction n(c);
  n.exec("SET app.origin = 'engine'");
  n.exec(
      "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) SELECT "
      "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Q', 1e9 "
      "FROM generate_series(1, " +
      std::to_string(kFillUsers) + ") g");
  const std::string u = "(1 + g % " + std::to_string(kFillUsers) + ")";
  n.exec(
      "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, "
      "leverage) SELECT ('0000000f-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
      "('0000000c-0000-4000-8000-' || lpad(to_hex(" +
      u + "), 12, '0'))::uuid, ('0000000e-0000-4000-8000-' || lpad(to_hex(" + u +
      "), 12, '0'))::uuid, ('0000000a-0000-4000-8000-' || lpad(to_hex((" + u + " + 1 + g / " +
      std::to_string(kFillUsers) + ") % " + std::to_string(markets) +
      "), 12, '0'))::uuid, 'market', 'long', 1, 10 FROM generate_series(1, " +
      std::to_string(orders) + ") g");
  n.exec("VACUUM ANALYZE");
}

db::WriteOp fill_op(long long n) {
  db::WriteOp op;
  op.kind = db::WriteKind::order_filled;
  op.id = db::seq_id(kFillOrderKind, n);
  op.ref = Matcher::position_id_for(op.id);
  op.price = 1000 * kScale;
  op.size = kScale;
  op.amount = kScale / 2;
  op.realized = -(kScale / 2);
  op.locked = 100 * kScale;
  op.entry = 1000 * kScale;
  op.flags = db::WriteOp::kTaker | db::WriteOp::kOpened;
  op.ts = 1'767'225'600'000'000'000;
  return op;
}

FillWriter::FillWriter(const std::string& url) : c_(std::make_unique<pqxx::connection>(url)) {
  pqxx::nontransaction(*c_).exec("SET app.origin = 'engine'");
  db::prepare_batch(*c_);
}

std::size_t FillWriter::fill(long long first, std::size_t n, std::size_t per_batch) {
  std::size_t applied = 0;
  for (std::size_t done = 0; done < n; done += per_batch) {
    db::Batch b;  // building the batch is part of the cost, as in the writer
    const std::size_t k = std::min(per_batch, n - done);
    for (std::size_t i = 0; i < k; ++i) b.add(fill_op(first + static_cast<long long>(done + i)));
    pqxx::nontransaction tx(*c_);
    const db::BatchResult r = db::apply_batch(tx, b);
    if (!r.conflicts.empty()) throw std::runtime_error("fill conflict: " + r.conflicts.front());
    applied += r.fills_applied;
  }
  return applied;
}

void FillWriter::verify(long long fills) {
  pqxx::read_transaction t(*c_);
  const auto trades = t.exec("SELECT count(*) FROM trades")[0][0].as<long long>();
  if (trades != fills)
    throw std::runtime_error("the trades table holds " + std::to_string(trades) + " rows after " +
                             std::to_string(fills) + " fills");
}

}  // namespace lam::bench
