"""duetime's HTTP surface: Dapr's jobs API, duetime's additions, and the trigger endpoint."""
