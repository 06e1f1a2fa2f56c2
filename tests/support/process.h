#pragma once
// Moved to tools/testbed/process.h (shared with the benchmark workloads).
#include "tools/testbed/process.h"
