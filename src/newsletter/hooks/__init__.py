"""Outgoing webhooks (Standard Webhooks): `signing` (pure), `delivery` (the durable queue, its
producer and its sender). The `newsletter webhooks` commands and the service's webhook part are
its faces; docs/integrations.md says how a CRM keeps in step through them."""
