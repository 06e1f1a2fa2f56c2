#include "workloads/writer_workload.h"

#include <set>
#include <stdexcept>
#include <tuple>

#include "engine/fixed.h"
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

}  // namespace lam::bench
