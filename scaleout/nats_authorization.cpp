#include "scaleout/nats_authorization.h"

#include <stdexcept>

#include "scaleout/shard.h"

namespace lam::daemon {
namespace {

bool subject_token(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c == ' ' || c == '.' || c == '*' || c == '>' || c == '\t' || c == '"' || c == '\\')
      return false;
  return true;
}

bool subject_prefix(const std::string& s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (char c : s)
    if (c == ' ' || c == '*' || c == '>' || c == '\t' || c == '"' || c == '\\') return false;
  return true;
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i > 0 ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string nats_authorization_block(const NatsAuthorization& a) {
  if (!subject_token(a.stream)) throw std::invalid_argument("stream: not a NATS name");
  if (!subject_prefix(a.subject_prefix))
    throw std::invalid_argument("subject_prefix: not a NATS subject");
  if (!subject_token(a.gateway_user)) throw std::invalid_argument("gateway user: not a name");
  for (const std::string& id : a.shards)
    if (!valid_shard_id(id)) throw std::invalid_argument("'" + id + "' is not a shard id");
  if (a.passwords.size() != a.shards.size() + 1)
    throw std::invalid_argument("one password per shard and one for the gateway");
  const std::string api = "$JS.API.";
  const std::string st = a.stream;
  // A shard creates the stream, or brings it to its config, at start-up; the gateway may create it
  // when it starts first (the same subjects: it cannot publish on them), never change it.
  const std::vector<std::string> stream_api = {api + "INFO", api + "STREAM.INFO." + st,
                                               api + "STREAM.CREATE." + st,
                                               api + "STREAM.UPDATE." + st};
  std::string out = "authorization {\n  users = [\n";
  for (std::size_t i = 0; i < a.shards.size(); ++i) {
    std::vector<std::string> pub = stream_api;
    pub.push_back(api + "STREAM.MSG.GET." + st);  // its last message: where publishing resumes
    // When nats-server lost that (jetstream_publisher.cpp, find_tail): a filtered ephemeral
    // consumer, never a delete (it expires by itself).
    pub.push_back(api + "CONSUMER.CREATE." + st);
    pub.push_back(api + "CONSUMER.CREATE." + st + ".>");
    pub.push_back(a.subject_prefix + "." + a.shards[i]);
    out += "    {user: \"shard_" + a.shards[i] + "\", password: \"" + escape(a.passwords[i]) +
           "\", permissions: {\n      publish: {allow: " + quoted_list(pub) +
           "},\n      subscribe: {allow: [\"_INBOX.>\"]}\n    }}\n";
  }
  std::vector<std::string> pub = {api + "INFO", api + "STREAM.INFO." + st,
                                  api + "STREAM.CREATE." + st};
  for (const std::string& p : {api + "CONSUMER.*." + st, api + "CONSUMER.*." + st + ".>",
                               api + "CONSUMER.*.*." + st + ".>", "$JS.ACK." + st + ".>"})
    pub.push_back(p);
  out += "    {user: \"" + a.gateway_user + "\", password: \"" + escape(a.passwords.back()) +
         "\", permissions: {\n      publish: {allow: " + quoted_list(pub) + ", deny: [\"" +
         a.subject_prefix + ".>\"]},\n      subscribe: {allow: [\"_INBOX.>\"]}\n    }}\n";
  out += "  ]\n}\n";
  return out;
}

}  // namespace lam::daemon
