#pragma once
// The child-process helper (tools/testbed/process.h, shared with the benchmark workloads) under the
// tests' namespace.

#include "tools/testbed/process.h"

namespace lam::test {
using testbed::Child;
using testbed::last_lines;
}  // namespace lam::test
