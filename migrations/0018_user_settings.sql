-- 0018: the engine follows the users' own settings (issue 33 §3; docs/semantics.md, "The users' own
-- settings"; docs/schema.md, "0018"): `user_settings` rows of the keys `risk_management`
-- (max_leverage, stop_loss_percentage) and `trading` (default_slippage) notify the engine like the
-- other tables it follows (notify_change(), 0002/0011). The values stay JSONB as the bot writes them:
-- the engine reads them with ->> and judges them itself (a value it cannot follow is named on the
-- stream, settings.rejected), so a bot's write is never refused for it.
CREATE TRIGGER user_settings_notify AFTER INSERT OR UPDATE OR DELETE ON user_settings FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION notify_change();
