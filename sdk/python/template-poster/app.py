"""Template outbound plugin: a production completion to one production receipt in the ERP.

render:    POST /api/v1/production-receipts on the target `erp`, one per completion with good
           quantity; other events are not posted; a completion without a lot cannot be.
interpret: an answer with the ERP's receiptId (2xx, or 409 replaying this Idempotency-Key) ->
           posted; a redirect, refused credentials, 408/423/429/5xx or a 2xx without a receiptId
           -> try again; else rejected with the ERP's message.
"""

from millrace_kit import RenderError, config, decimals, posting


def render(event):
    envelope, data = event["envelope"], event["data"]
    # "0", "0.000": nothing made is nothing to receive.
    if envelope["kind"] != "production-completion" or decimals.parse(data["good_quantity"]["amount"]) == 0:
        return []
    if "lot" not in data:
        raise RenderError.incomplete(f"the completion of order {data['work_order']} has no lot")
    site = envelope["site"]
    return [
        posting.post("erp", "/api/v1/production-receipts", json={
            "order": data["work_order"],
            "operation": data.get("operation"),
            "material": data["item"],
            "batch": data["lot"],
            "quantity": data["good_quantity"]["amount"],  # decimal text, never a float
            "unit": data["good_quantity"]["uom"],
            "plant": config.get(f"plant.{site}", site),
            "completedAt": envelope["time"],
        }),
    ]


def interpret(event, request, response):
    receipt = response.json_str("receiptId")
    if receipt and (response.is_success() or response.status == 409):
        return posting.posted(receipt)  # 409: this Idempotency-Key was booked before
    access = response.access_problem()
    if access:
        return access
    if response.is_success():
        return response.success_without("a receiptId")
    if response.is_transient():
        return posting.try_again(response.summary())
    return posting.rejected(response.error_message() or response.summary())
