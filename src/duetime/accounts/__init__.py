"""Accounts for people using a browser: email and password, sessions, invites.

`model` is pure (email rules, password policy, the records); `passwords` hashes with
argon2id; `port` is the storage contract, `store` its SQL adapter; `service` is what the HTTP
API and the `duetime users` commands call.
"""
