"""Checkout metrics: orders, revenue, payment outcomes, webhook deliveries and their latency."""
from prometheus_client import Counter, Histogram

ORDERS = Counter("hawker_orders_total", "Orders by final state", ["state"])
REVENUE = Counter("hawker_revenue_minor_units_total", "Paid revenue in minor units", ["currency"])
PAYMENTS = Counter("hawker_payments_total", "Payment attempts by outcome", ["outcome"])
PAYMENT_LATENCY = Histogram("hawker_payment_seconds", "Time from begin_payment to a decision")
WEBHOOK_DELIVERIES = Counter("hawker_webhook_deliveries_total", "Webhook delivery attempts by result", ["result"])
WEBHOOK_LATENCY = Histogram("hawker_webhook_delivery_seconds", "Webhook POST latency")
