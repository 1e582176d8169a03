// Template outbound plugin: a production completion to one production receipt in the ERP.
//
// render:    POST /api/v1/production-receipts on the target `erp`, one per completion with good
//            quantity; other events are not posted; a completion without a lot cannot be.
// interpret: 2xx -> posted (the ERP's receiptId); 408/429/5xx -> try again; else rejected with
//            the ERP's message.

import { config } from '../src/millrace.js';
import { RenderError, posting } from '../src/posting.js';

export function render(event) {
  const { envelope, data } = event;
  if (envelope.kind !== 'production-completion' || data.good_quantity.amount === '0') return [];
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
  if (response.isSuccess()) return posting.posted(response.jsonStr('receiptId') ?? '');
  if (response.isTransient()) return posting.tryAgain(response.summary());
  return posting.rejected(response.errorMessage() ?? response.summary());
}
