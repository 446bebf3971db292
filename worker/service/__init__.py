"""The service: settings, the HTTP ingress, the queue, the ledger in Redis, signed callbacks, `autotag up`."""
