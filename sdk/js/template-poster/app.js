// Template outbound plugin: a production completion to one production receipt in the ERP.
//
// render:    POST /api/v1/production-receipts on the target `erp`, one per completion with good
//            quantity; other events are not posted; a completion without a lot cannot be.
// interpret: an answer with the ERP's receiptId (2xx, or 409 replaying this Idempotency-Key) ->
//            posted; a redirect, refused credentials, 408/423/429/5xx or a 2xx without a
//            receiptId -> try again; else rejected with the ERP's message.

import { config } from '../src/millrace.js';
import { RenderError, posting } from '../src/posting.js';

export function render(event) {
  const { envelope, data } = event;
  // "0", "0.000": nothing made is nothing to receive.
  if (envelope.kind !== 'production-completion' || /^[+-]?0*(\.0*)?$/.test(data.good_quantity.amount)) return [];
  if (data.lot === undefined) throw RenderError.incomplete(`the completion of order ${data.work_order} has no lot`);
  return [
    posting.post('erp', '/api/v1/production-receipts', {
      json: {
        order: data.work_order,
        operation: data.operation ?? null,
        material: data.item,
        batch: data.lot,
        quantity: data.good_quantity.amount, // decimal text, never a JS number
        unit: data.good_quantity.uom,
        plant: config.get(`plant.${envelope.site}`, envelope.site),
        completedAt: envelope.time,
      },
    }),
  ];
}

export function interpret(event, request, response) {
  const receipt = response.jsonStr('receiptId');
  // 409: this Idempotency-Key was booked before.
  if (receipt && (response.isSuccess() || response.status === 409)) return posting.posted(receipt);
  const access = response.accessProblem();
  if (access) return access;
  if (response.isSuccess()) return response.successWithout('a receiptId');
  if (response.isTransient()) return posting.tryAgain(response.summary());
  return posting.rejected(response.errorMessage() ?? response.summary());
}
