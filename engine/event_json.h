#pragma once
/// The one JSON form of every event (docs/events.md). Decimals are strings, ids canonical UUIDs.

#include <string>

#include "engine/event.h"

namespace lam {

/// Appends one event as a single-line JSON object (no trailing newline).
void append_event_json(std::string& out, const Event& e);

/// Stable machine-readable code of a rejection reason ("missing_target", ...).
[[nodiscard]] std::string_view reason_code(RejectReason r) noexcept;

}  // namespace lam
