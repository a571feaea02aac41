"""Razorpay record shapes from the merchant's ledger (contract: shared/reference/bank-contracts.md §4).

Amounts are integer paise, times unix seconds. ``scale`` multiplies every amount (a test switch for
sums far beyond float's exact range; the ledger's own arithmetic stays as it is).
"""

from __future__ import annotations

from typing import Any

from sandbox.razorpay_ledger import (
    GatewayAdjustment,
    GatewayPayment,
    GatewayRefund,
    Settlement,
    recon_notes,
)


def collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Razorpay's list envelope: ``count`` is the number of items on this page (there is no total)."""
    return {"entity": "collection", "count": len(items), "items": items}


def payment_json(payment: GatewayPayment, refund: GatewayRefund | None, scale: int = 1) -> dict[str, Any]:
    """A payment as of today: ``refund`` is its refund if made by today."""
    refunded = refund.amount if refund else 0
    if not payment.captured:
        status = "failed"
    elif refund and refunded == payment.amount:
        status = "refunded"
    else:
        status = "captured"
    details = payment.details
    failed = not payment.captured
    return {
        "id": payment.payment_id,
        "entity": "payment",
        "amount": payment.amount * scale,
        "currency": "INR",
        "status": status,
        "order_id": payment.order_id,
        "invoice_id": None,
        "international": payment.international,
        "method": payment.method,
        "amount_refunded": refunded * scale,
        "refund_status": None if not refund else ("full" if refunded == payment.amount else "partial"),
        "captured": payment.captured,
        "description": payment.description,
        "card_id": details["card_id"],
        "bank": details["bank"],
        "wallet": details["wallet"],
        "vpa": details["vpa"],
        "email": payment.email,
        "contact": payment.contact,
        "customer_id": None,
        "notes": payment.notes,
        # Razorpay charges (and reports) a fee only on captured payments.
        "fee": None if failed else payment.fee * scale,
        "tax": None if failed else payment.tax * scale,
        "error_code": "BAD_REQUEST_ERROR" if failed else None,
        "error_description": "Payment failed because the bank declined it." if failed else None,
        "error_source": "bank" if failed else None,
        "error_step": "payment_authorization" if failed else None,
        "error_reason": "payment_declined" if failed else None,
        "acquirer_data": details["acquirer_data"],
        "created_at": payment.created_at,
    }


def refund_json(refund: GatewayRefund, scale: int = 1) -> dict[str, Any]:
    return {
        "id": refund.refund_id,
        "entity": "refund",
        "amount": refund.amount * scale,
        "currency": "INR",
        "payment_id": refund.payment_id,
        "notes": refund.notes,
        "receipt": None,
        "acquirer_data": {"arn": refund.arn},
        "created_at": refund.created_at,
        "batch_id": None,
        "status": "processed",
        "speed_processed": "normal",
        "speed_requested": "optimum",
    }


def settlement_json(settlement: Settlement, scale: int = 1) -> dict[str, Any]:
    return {
        "id": settlement.settlement_id,
        "entity": "settlement",
        "amount": settlement.amount * scale,
        "status": "processed",
        "fees": settlement.fees * scale,
        "tax": settlement.tax * scale,
        "utr": settlement.utr,
        "created_at": settlement.created_at,
    }


def recon_items_json(settlement: Settlement, scale: int = 1) -> list[dict[str, Any]]:
    """The settlement's items as the combined recon report lists them. Adjustments carry the
    settlement id but no UTR (as Razorpay's own example shows)."""
    settled = {
        "on_hold": False,
        "settled": True,
        "settled_at": settlement.created_at,
        "settlement_id": settlement.settlement_id,
        "posted_at": None,
        "credit_type": "default",
    }
    items = [_payment_item(p, settlement, settled, scale) for p in settlement.payments]
    items += [_refund_item(r, settlement, settled, scale) for r in settlement.refunds]
    items += [_adjustment_item(a, settled, scale) for a in settlement.adjustments]
    return items


def _card_fields(payment: GatewayPayment | None) -> dict[str, Any]:
    card = payment.details["card"] if payment else None
    return {
        "method": payment.method if payment else None,
        "card_network": card["network"] if card else None,
        "card_issuer": card["issuer"] if card else None,
        "card_type": card["type"] if card else None,
        "dispute_id": None,
    }


def _payment_item(
    payment: GatewayPayment, settlement: Settlement, settled: dict[str, Any], scale: int
) -> dict[str, Any]:
    return {
        "entity_id": payment.payment_id,
        "type": "payment",
        "debit": 0,
        "credit": payment.credit * scale,
        "amount": payment.amount * scale,
        "currency": "INR",
        "fee": payment.fee * scale,
        "tax": payment.tax * scale,
        "created_at": payment.created_at,
        **settled,
        "description": payment.description,
        "notes": recon_notes(payment.notes),
        "payment_id": None,
        "settlement_utr": settlement.utr,
        "order_id": payment.order_id,
        "order_receipt": None,
        **_card_fields(payment),
    }


def _refund_item(
    refund: GatewayRefund, settlement: Settlement, settled: dict[str, Any], scale: int
) -> dict[str, Any]:
    payment = refund.payment
    return {
        "entity_id": refund.refund_id,
        "type": "refund",
        "debit": refund.amount * scale,
        "credit": 0,
        "amount": refund.amount * scale,
        "currency": "INR",
        "fee": 0,
        "tax": 0,
        "created_at": refund.created_at,
        **settled,
        "description": None,
        "notes": recon_notes(refund.notes),
        "payment_id": refund.payment_id,
        "settlement_utr": settlement.utr,
        "order_id": payment.order_id,
        "order_receipt": None,
        **_card_fields(payment),
    }


def _adjustment_item(adjustment: GatewayAdjustment, settled: dict[str, Any], scale: int) -> dict[str, Any]:
    return {
        "entity_id": adjustment.adjustment_id,
        "type": "adjustment",
        "debit": max(-adjustment.amount, 0) * scale,
        "credit": max(adjustment.amount, 0) * scale,
        "amount": abs(adjustment.amount) * scale,
        "currency": "INR",
        "fee": 0,
        "tax": 0,
        "created_at": adjustment.created_at,
        **settled,
        "description": adjustment.description,
        "notes": None,
        "payment_id": None,
        "settlement_utr": None,
        "order_id": None,
        "order_receipt": None,
        **_card_fields(None),
    }
