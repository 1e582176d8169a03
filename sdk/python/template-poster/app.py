"""Template outbound plugin: a production completion to one production receipt in the ERP.

render:    POST /api/v1/production-receipts on the target `erp`, one per completion with good
           quantity; other events are not posted; a completion without a lot cannot be.
interpret: 2xx -> posted (the ERP's receiptId); 408/429/5xx -> try again; else rejected with
           the ERP's message.
"""

from millrace_kit import RenderError, config, posting


def render(event):
    envelope, data = event["envelope"], event["data"]
    if envelope["kind"] != "production-completion" or data["good_quantity"]["amount"] == "0":
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
    if response.is_success():
        return posting.posted(response.json_str("receiptId") or "")
    if response.is_transient():
        return posting.try_again(response.summary())
    return posting.rejected(response.error_message() or response.summary())
