from django.dispatch import Signal

# Sent by the webhook receiver inside the transaction that records a verified event,
# before anything calls Stripe: receivers get `event` (the event dict) and must only write
# rows and enqueue on commit. Kanri's workflow triggers listen to it.
stripe_event_received = Signal()
