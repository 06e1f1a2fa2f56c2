#include "engine/ladder.h"

namespace lam {

void merge_crossed(const std::vector<Crossed>& a, const std::vector<Crossed>& b,
                   std::vector<Crossed>& out) {
  out.clear();
  out.reserve(a.size() + b.size());
  auto before = [](const Crossed& x, const Crossed& y) {
    return x.distance != y.distance ? x.distance < y.distance : x.id < y.id;
  };
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out), before);
}

}  // namespace lam
