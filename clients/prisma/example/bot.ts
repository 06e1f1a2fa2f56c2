// What the bot does with Prisma, typed end to end (run by test/drift.test.mjs against a migrated
// database): create a price alert and a stop-loss, then read a user's positions with fresh uPnL.
import { PrismaPg } from "@prisma/adapter-pg";

import { PrismaClient } from "../generated/prisma/client.js";

export async function botExample(url: string, userId: string, marketId: string, walletId: string) {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
  try {
    // An alert: above 80,000. Decimals go in as strings, never through a float.
    const alert = await prisma.alert.create({
      data: {
        userId,
        marketId,
        alertType: "price_above",
        conditionType: "greater_than",
        targetPrice: "80000",
        message: "BTC above 80k",
      },
    });
    // A stop-loss on the user's long: a reduce-only stop that sells when the mark reaches 75,000.
    // `sell` reduces an open long (`buy` an open short): without one the engine cancels the order
    // with status_reason `no_position`. `leverage` defaults to 1 (it matters for `long`/`short`,
    // which open or increase a position and lock size x price / leverage of margin).
    const stop = await prisma.order.create({
      data: {
        userId,
        walletId,
        marketId,
        orderType: "stop",
        side: "sell",
        size: "0.5",
        triggerPrice: "75000",
      },
    });
    // The engine's columns of a paper order (status `filled`, filled_size, avg_fill_price,
    // total_fees, filled_at, triggered_at, position_id) are the engine's: the database refuses them.
    let refused = "";
    try {
      await prisma.order.create({
        data: { userId, walletId, marketId, orderType: "market", side: "long", size: "1",
                status: "open", filledSize: "1" },
      });
    } catch (e) {
      refused = e instanceof Error ? e.message : String(e);
    }
    // Positions with the engine's latest mark, uPnL and ROE% (the positions_live view).
    const positions = await prisma.positionLive.findMany({
      where: { userId, status: "open" },
      orderBy: { openedAt: "asc" },
    });
    return {
      alertId: alert.id,
      alertStatus: alert.status,
      stopId: stop.id,
      stopStatus: stop.status,
      refused,
      positions: positions.map((p) => ({
        id: p.id,
        side: p.side,
        // toFixed(), not toString(): Decimal's toString() prints 5e-8 for small values.
        currentPrice: p.currentPrice?.toFixed() ?? null,
        unrealizedPnl: p.unrealizedPnl?.toFixed() ?? null,
        roePercent: p.roePercent?.toFixed() ?? null,
      })),
    };
  } finally {
    await prisma.$disconnect();
  }
}
