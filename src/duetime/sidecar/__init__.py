"""What duetime serves in place of a Dapr sidecar: the Jobs and pub/sub building blocks over
HTTP and gRPC, scoped per app, on the ports (jobs scheduler, event broker) below it."""
