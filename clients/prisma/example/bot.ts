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
      positions: positions.map((p) => ({
        id: p.id,
        side: p.side,
        currentPrice: p.currentPrice?.toString() ?? null,
        unrealizedPnl: p.unrealizedPnl?.toString() ?? null,
        roePercent: p.roePercent?.toString() ?? null,
      })),
    };
  } finally {
    await prisma.$disconnect();
  }
}
