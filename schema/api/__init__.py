"""The HTTP API's models, a module per resource: fields (the shared field types), orders,
actions (operators'), customers (the customer's side), subscriptions (the shop's events),
admin, returns (refunds, returns, exchanges). Validation lives here, so that bad input gets a
422 naming the field and never reaches a workflow; import each model from its module."""
