export * from "./events.js";
export * from "./client.js";
export * from "./cursors.js";
export * from "./notifier.js";
export * from "./seq.js";
