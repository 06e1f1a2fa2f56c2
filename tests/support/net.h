#pragma once
// The loopback helpers (tools/mockex/loopback.h, shared with the benchmark workloads) under the
// tests' namespace.

#include "tools/mockex/loopback.h"

namespace lam::test {
using mockex::free_port;
using mockex::loopback_accepts;
}  // namespace lam::test
