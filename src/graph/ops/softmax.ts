// Owned by the softmax family; see docs/ops/.
export {};
