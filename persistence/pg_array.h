#pragma once
/// PostgreSQL array literals for parameters (`$1::uuid[]`): built as text and passed as a
/// parameter, never spliced into SQL.

#include <string>
#include <vector>

#include "engine/uuid.h"

namespace lam::db {

/// `{u1,u2,...}`: a uuid[] literal.
[[nodiscard]] inline std::string uuid_array(const std::vector<Uuid>& ids) {
  std::string s = "{";
  s.reserve(2 + ids.size() * 37);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s.push_back(',');
    ids[i].append_to(s);
  }
  s.push_back('}');
  return s;
}

}  // namespace lam::db
