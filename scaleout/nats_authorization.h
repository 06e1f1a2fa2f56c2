#pragma once
/// NATS authorization for a scaled-out deployment (docs/operations.md, "NATS authorization"): one
/// user per shard, which may publish on its own subject only, and one for the gateway, which may
/// only consume. Pure text: `laminator nats-authorization` prints it for nats-server's config, and
/// the tests start nats-server with it.

#include <string>
#include <vector>

namespace lam::daemon {

struct NatsAuthorization {
  std::string stream = "LAMINATOR";
  std::string subject_prefix = "laminator.events";
  std::vector<std::string> shards;  ///< shard ids (each a user `shard_<id>`)
  std::string gateway_user = "gateway";
  /// Passwords in the order of `shards`, then the gateway's (each as given: bcrypt hashes from
  /// `nats server passwd` or plain text).
  std::vector<std::string> passwords;
};

/// The `authorization { users = [...] }` block. A shard may publish on `<prefix>.<id>` and use the
/// stream's API (info, create, update, get its last message); the gateway may read the stream's
/// info, create it when it starts first (never change it), manage and pull from consumers of the
/// stream, and acknowledge, and may publish on no shard's subject; both receive replies on
/// `_INBOX.>`. Throws std::invalid_argument on a shard id or name that is not a subject token, or a
/// password count that does not match.
[[nodiscard]] std::string nats_authorization_block(const NatsAuthorization& a);

}  // namespace lam::daemon
