#pragma once
// The throwaway nats-server (tools/testbed/nats_server.h, shared with the fan-in benchmark) under
// the tests' namespace.

#include "tools/testbed/nats_server.h"

namespace lam::test {
using testbed::NatsServer;
}  // namespace lam::test
