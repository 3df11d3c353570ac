"""finance-notifier: a Python service that joins the platform through its contracts alone.

It consumes `payments.payment.succeeded` and `payments.refund.succeeded` from
the `payments` topic through its own daprd, validates each against
`contracts/events/<type>.schema.json`, and for each one reads the affected
ledger account's balance from bookkeeping with a client-credentials token from
auth, both reached by Dapr service invocation.
"""
