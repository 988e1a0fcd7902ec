"""Staff: workspace accounts, roles, sessions, the second factor, login throttling, the audit trail.

The domain only, no web code: `roles` (what each role may do: `allowed`), `accounts` (add,
invite, accept, reset, revoke, change role; argon2id), `links` (signed single-use links),
`sessions` (server-side, revocable, new at every login), `throttle`, `totp`, `audit`
(append-only) and `mailer` (invitations and reset links through the one message builder).
The workspace (`newsletter.workspace`) and the `newsletter users` commands are its faces.
"""
