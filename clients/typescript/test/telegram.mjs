// A local stand-in for the Telegram Bot API's sendMessage, with its documented limits enforced the way
// the API does: about 30 messages per second in all and one per second per chat, answered beyond
// them with 429 and `parameters.retry_after`; a request during a chat's or the bot's penalty is
// refused again (and counted: a well-behaved sender makes none). Loopback only.

import http from "node:http";

export class FakeTelegram {
  constructor({
    token = "123:test",
    perSecond = 30,
    perChatMs = 1000,
    retryAfterS = 1,
    latencyMs = 0,
    blocked = [],
  } = {}) {
    Object.assign(this, { token, perSecond, perChatMs, retryAfterS, latencyMs });
    this.blocked = new Set(blocked.map(String));
    this.messages = []; // { chatId, text, at }
    this.byChat = new Map(); // chatId -> [at...]
    this.recent = []; // accepted send times, for the global window
    this.tooMany = 0;
    this.duringPenalty = 0;
    this.globalPenaltyUntil = 0;
    this.chatPenaltyUntil = new Map();
  }

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  stop() {
    return new Promise((r) => this.server.close(() => r()));
  }

  handle(req, res) {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const reply = (status, body) => {
        const send = () => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        };
        if (this.latencyMs > 0) setTimeout(send, this.latencyMs);
        else send();
      };
      if (req.method !== "POST" || req.url !== `/bot${this.token}/sendMessage`)
        return reply(404, { ok: false, error_code: 404, description: "Not Found" });
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return reply(400, { ok: false, error_code: 400, description: "Bad Request: invalid JSON" });
      }
      const chat = String(body.chat_id);
      if (typeof body.text !== "string" || body.text.length === 0 || body.text.length > 4096)
        return reply(400, { ok: false, error_code: 400, description: "Bad Request: message text is empty or too long" });
      if (this.blocked.has(chat))
        return reply(403, { ok: false, error_code: 403, description: "Forbidden: bot was blocked by the user" });
      const now = Date.now();
      const tooMany = () => {
        this.tooMany += 1;
        reply(429, {
          ok: false,
          error_code: 429,
          description: `Too Many Requests: retry after ${this.retryAfterS}`,
          parameters: { retry_after: this.retryAfterS },
        });
      };
      if (now < this.globalPenaltyUntil || now < (this.chatPenaltyUntil.get(chat) ?? 0)) {
        this.duringPenalty += 1;
        return tooMany();
      }
      while (this.recent.length > 0 && this.recent[0] <= now - 1000) this.recent.shift();
      if (this.recent.length >= this.perSecond) {
        this.globalPenaltyUntil = now + this.retryAfterS * 1000;
        return tooMany();
      }
      const times = this.byChat.get(chat) ?? [];
      if (times.length > 0 && now - times[times.length - 1] < this.perChatMs) {
        this.chatPenaltyUntil.set(chat, now + this.retryAfterS * 1000);
        return tooMany();
      }
      times.push(now);
      this.byChat.set(chat, times);
      this.recent.push(now);
      this.messages.push({ chatId: chat, text: body.text, at: now });
      reply(200, { ok: true, result: { message_id: this.messages.length, chat: { id: body.chat_id }, text: body.text } });
    });
  }

  /** The most messages any chat received. */
  maxPerChat() {
    let m = 0;
    for (const t of this.byChat.values()) m = Math.max(m, t.length);
    return m;
  }
}
