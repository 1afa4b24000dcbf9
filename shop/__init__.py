"""The shop's domain: broadcasts, flash-sale records, polls, quizzes and giveaways, kept in Redis.

Below the transport: nothing here imports `live/`; the socket and REST handlers in `live/` call
these stores. Stock itself is `inventory/`; auctions are `auctions/`."""
