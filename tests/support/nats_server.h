#pragma once
// Moved to tools/testbed/nats_server.h (shared with the benchmark workloads).
#include "tools/testbed/nats_server.h"
